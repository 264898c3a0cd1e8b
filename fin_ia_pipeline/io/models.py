"""IO manager for trained models: a checkpoint file per model asset on write, the registered MLflow version on read.

Write: ``<root>/<asset_key>.safetensors`` in the one fin-ia checkpoint format (``fin_ia_models.training.checkpoint``:
tensors + JSON config, atomic; on object stores written in one PUT). Read: the exact registered version
(``models:/fin-ia-<stage>/<n>``) that the upstream's latest materialization recorded in its metadata — not "the
newest file" — checked against the SHA-256 recorded at registration, so a downstream run's lineage is exact and a
tampered file is refused. The loaded model carries ``fin_ia_lineage`` (name, version, MLflow run id).
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from upath import UPath

from fin_ia_models.tracking.runs import UpstreamModel
from fin_ia_pipeline.tracking.resource import MlflowResource


class ModelCheckpointIOManager(dg.UPathIOManager):
    extension = ".safetensors"

    def __init__(self, base_path: UPath, mlflow: MlflowResource):
        super().__init__(base_path=base_path)
        self.mlflow = mlflow

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        from fin_ia_models.training.checkpoint import checkpoint_bytes, kind_of
        from fin_ia_models.utils.atomic import atomic_write_bytes

        atomic_write_bytes(path, checkpoint_bytes(obj, kind_of(obj)))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        event = context.instance.get_latest_materialization_event(context.asset_key)
        meta = {} if event is None else event.asset_materialization.metadata
        if "mlflow_model_uri" not in meta:
            raise ValueError(
                f"the latest materialization of {context.asset_key.to_user_string()} recorded no MLflow model "
                "version; re-materialize it so downstream stages can load the exact registered version"
            )
        uri = meta["mlflow_model_uri"].value
        model = self.mlflow.load_model(uri)
        model.fin_ia_lineage = UpstreamModel(meta["mlflow_model_name"].value, meta["mlflow_model_version"].value,
                                             meta["mlflow_run_id"].value)
        context.log.info(f"loaded {uri} (MLflow run {meta['mlflow_run_id'].value}, SHA-256 verified)")
        return model


class ModelCheckpointIOManagerFactory(dg.ConfigurableIOManagerFactory):
    """Stores model checkpoints under ``root`` (local path or s3:// / gs:// URL); loads registered versions."""

    root: str
    mlflow: MlflowResource

    def create_io_manager(self, context) -> ModelCheckpointIOManager:
        return ModelCheckpointIOManager(UPath(self.root), self.mlflow)
