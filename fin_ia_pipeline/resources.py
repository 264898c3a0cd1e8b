"""Resources every model stage shares, built once in ``definitions.py``: the MLflow tracking store, the model IO
manager (checkpoint on write, registered version on read) and the parquet IO manager of symbol-partitioned frames."""

from __future__ import annotations

from upath import UPath

from fin_ia_pipeline.io.frames import SymbolFrameIOManagerFactory
from fin_ia_pipeline.io.models import ModelCheckpointIOManagerFactory
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tracking.resource import MlflowResource


def shared_resources(settings: PipelineSettings) -> dict:
    root = UPath(settings.storage_root)
    mlflow = MlflowResource(tracking_uri=settings.mlflow_tracking_uri, artifact_root=settings.mlflow_artifact_root,
                            ui_url=settings.mlflow_ui_url)
    return {
        "mlflow": mlflow,
        "model_io_manager": ModelCheckpointIOManagerFactory(root=str(root / "models"), mlflow=mlflow),
        "frame_io_manager": SymbolFrameIOManagerFactory(root=str(root / "frames")),
    }
