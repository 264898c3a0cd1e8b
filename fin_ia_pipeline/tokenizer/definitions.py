"""The tokenizer stage's Definitions."""

import dagster as dg
from upath import UPath

from fin_ia_models.tokenizer.checkpoint import load_tokenizer, save_tokenizer
from fin_ia_pipeline.io.frames import SymbolFrameIOManagerFactory
from fin_ia_pipeline.io.models import ModelCheckpointIOManagerFactory, register_model_codec
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tracking.promotion import TOKENIZER_GATES, build_champion_gate
from fin_ia_pipeline.tracking.resource import MlflowResource
from fin_ia_pipeline.tokenizer.assets import build_tokenizer_assets

register_model_codec("tokenizer_model", lambda model, path: save_tokenizer(model, path), load_tokenizer)


def build_tokenizer_defs(settings: PipelineSettings) -> dg.Definitions:
    symbols = dg.StaticPartitionsDefinition(list(settings.symbols))
    root = UPath(settings.storage_root)
    mlflow = MlflowResource(tracking_uri=settings.mlflow_tracking_uri, artifact_root=settings.mlflow_artifact_root,
                            ui_url=settings.mlflow_ui_url)
    return dg.Definitions(
        assets=build_tokenizer_assets(settings, symbols),
        asset_checks=[build_champion_gate(dg.AssetKey("tokenizer_model"), TOKENIZER_GATES)],
        resources={
            "mlflow": mlflow,
            "model_io_manager": ModelCheckpointIOManagerFactory(root=str(root / "models"), mlflow=mlflow),
            "frame_io_manager": SymbolFrameIOManagerFactory(root=str(root / "frames")),
        },
    )
