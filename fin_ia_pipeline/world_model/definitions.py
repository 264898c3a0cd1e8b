"""The world-model stage's Definitions: its two assets and the champion gate of ``jepa_encoder``."""

import dagster as dg

from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tracking.promotion import JEPA_FLOORS, JEPA_GATES, build_champion_gate
from fin_ia_pipeline.world_model.assets import build_world_model_assets


def build_defs(settings: PipelineSettings) -> dg.Definitions:
    symbols = dg.StaticPartitionsDefinition(list(settings.symbols))
    return dg.Definitions(assets=build_world_model_assets(settings, symbols),
                          asset_checks=[build_champion_gate(dg.AssetKey("jepa_encoder"), JEPA_GATES,
                                                              JEPA_FLOORS)])
