"""``MlflowResource``: where runs and registered models go, plus the Dagster-side lineage tags.

Embedded default: a sqlite tracking store and a local artifact directory under ``FIN_IA_HOME/mlflow`` (never the
user's home). ``MLFLOW_TRACKING_URI`` points it at a shared tracking server instead (see deploy/).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from fin_ia_models.tracking.runs import LoggedModel, TrackingTarget


class MlflowResource(dg.ConfigurableResource):
    tracking_uri: str  # sqlite:///.../mlflow.db locally, http://mlflow:5000 on a cluster
    artifact_root: str | None = None  # root for new experiments' artifacts; None = the tracking server decides
    ui_url: str = "http://127.0.0.1:5000"  # the MLflow UI showing this store (`make mlflow`), used for links

    def target(self) -> TrackingTarget:
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return TrackingTarget(self.tracking_uri, self.artifact_root, self.ui_url)

    @staticmethod
    def dagster_tags(context: dg.AssetExecutionContext) -> dict[str, str]:
        """Lineage tags every run carries: which Dagster run, asset, partition(s) and code version made it."""
        key = context.asset_key
        partitions = ",".join(context.partition_keys) if context.has_partition_key else ""
        return {
            "fin_ia.dagster.run_id": context.run.run_id,
            "fin_ia.dagster.asset_key": key.to_user_string(),
            "fin_ia.dagster.partition_keys": partitions or "-",
            "fin_ia.code_version": context.assets_def.code_versions_by_key.get(key) or "-",
        }

    @contextmanager
    def training_run(self, context: dg.AssetExecutionContext, experiment: str):
        """An MLflow run named ``<asset> · <dagster run>`` around a training: opened before it (an unreachable
        store fails the step before any compute is spent), ended after the model is logged."""
        from fin_ia_models.tracking.runs import system_info, tracked_run
        from fin_ia_models.utils.device import choose_device

        device = choose_device()
        tags = {**self.dagster_tags(context), **system_info(device.device_name, device.precision)}
        name = f"{context.asset_key.to_user_string()} · {context.run.run_id[:8]}"
        with tracked_run(self.target(), experiment, name, tags) as run:
            context.log.info(f"MLflow run {run.run_id} ({name}) started — {run.url}")
            yield run

    def load_model(self, model_uri: str):
        from fin_ia_models.tracking.runs import load_registered_model

        return load_registered_model(self.tracking_uri, model_uri)


def model_metadata(logged: LoggedModel) -> dict:
    """Materialization metadata that ties a Dagster asset to its MLflow run and registered version."""
    return {
        "mlflow_run_id": logged.run_id,
        "mlflow_model_name": logged.model_name,
        "mlflow_model_version": logged.version,
        "mlflow_model_uri": logged.model_uri,
        "mlflow_model_sha256": logged.sha256,
        "mlflow_run_url": dg.MetadataValue.url(logged.run_url),
    }
