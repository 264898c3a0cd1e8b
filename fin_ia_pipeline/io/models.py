"""IO manager for trained models: a checkpoint file per model asset on write, the registered MLflow version on read.

Write: ``<root>/<asset_key>.pt`` through the library's own atomic ``save_*`` function (each model asset registers
its codec, so this module knows no model internals; on object stores the file is written locally and uploaded in one
PUT). Read: the exact registered version (``models:/fin-ia-<stage>/<n>``) that the upstream's latest
materialization recorded in its metadata — not "the newest file" — so a downstream run's lineage is exact. The
loaded model carries ``fin_ia_lineage`` (name, version, MLflow run id) for the consumer to record.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
from upath import UPath

from fin_ia_models.tracking.runs import UpstreamModel
from fin_ia_pipeline.tracking.resource import MlflowResource

SaveFn = Callable[[Any, Path], Any]
LoadFn = Callable[[Path], Any]
_CODECS: dict[str, tuple[SaveFn, LoadFn]] = {}


def register_model_codec(asset_name: str, save: SaveFn, load: LoadFn) -> None:
    _CODECS[asset_name] = (save, load)


def _codec(context) -> tuple[SaveFn, LoadFn]:
    name = context.asset_key.path[-1]
    if name not in _CODECS:
        raise KeyError(f"no checkpoint codec registered for asset {name!r} (call register_model_codec)")
    return _CODECS[name]


def _is_local(path: UPath) -> bool:
    return getattr(path, "protocol", "") in ("", "file", "local")


class ModelCheckpointIOManager(dg.UPathIOManager):
    extension = ".pt"

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        save, _ = _codec(context)
        if _is_local(path):
            save(obj, Path(path.path))  # the library's save is atomic (temp file + os.replace)
            return
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / path.name
            save(obj, local)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(local.read_bytes())

    def __init__(self, base_path: UPath, mlflow: MlflowResource):
        super().__init__(base_path=base_path)
        self.mlflow = mlflow

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
        context.log.info(f"loaded {uri} (MLflow run {meta['mlflow_run_id'].value})")
        return model


class ModelCheckpointIOManagerFactory(dg.ConfigurableIOManagerFactory):
    """Stores model checkpoints under ``root`` (local path or s3:// / gs:// URL); loads registered versions."""

    root: str
    mlflow: MlflowResource

    def create_io_manager(self, context) -> ModelCheckpointIOManager:
        return ModelCheckpointIOManager(UPath(self.root), self.mlflow)
