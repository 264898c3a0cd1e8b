"""The world-model stage's Definitions (its IO managers are shared with the tokenizer stage)."""

import dagster as dg

from fin_ia_models.world_model.train import load_jepa, save_jepa
from fin_ia_pipeline.io.models import register_model_codec
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tracking.promotion import JEPA_GATES, build_champion_gate
from fin_ia_pipeline.world_model.assets import build_world_model_assets


register_model_codec("jepa_encoder", save_jepa, load_jepa)


def build_world_model_defs(settings: PipelineSettings) -> dg.Definitions:
    symbols = dg.StaticPartitionsDefinition(list(settings.symbols))
    return dg.Definitions(assets=build_world_model_assets(settings, symbols),
                          asset_checks=[build_champion_gate(dg.AssetKey("jepa_encoder"), JEPA_GATES)])
