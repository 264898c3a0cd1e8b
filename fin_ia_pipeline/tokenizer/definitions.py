"""The tokenizer stage's Definitions."""

import dagster as dg
from upath import UPath

from fin_ia_models.tokenizer.checkpoint import load_tokenizer, save_tokenizer
from fin_ia_pipeline.io.frames import SymbolFrameIOManagerFactory
from fin_ia_pipeline.io.models import ModelCheckpointIOManagerFactory, register_model_codec
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tokenizer.assets import build_tokenizer_assets

register_model_codec("tokenizer_model", lambda model, path: save_tokenizer(model, path), load_tokenizer)


def build_tokenizer_defs(settings: PipelineSettings) -> dg.Definitions:
    symbols = dg.StaticPartitionsDefinition(list(settings.symbols))
    root = UPath(settings.storage_root)
    return dg.Definitions(
        assets=build_tokenizer_assets(settings, symbols),
        resources={
            "model_io_manager": ModelCheckpointIOManagerFactory(root=str(root / "models")),
            "frame_io_manager": SymbolFrameIOManagerFactory(root=str(root / "frames")),
        },
    )
