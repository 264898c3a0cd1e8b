"""The multiverse stage's Definitions: its two assets and the champion gate of ``multiverse_model``."""

import dagster as dg

from fin_ia_pipeline.multiverse.assets import build_multiverse_assets
from fin_ia_pipeline.multiverse.checks import build_multiverse_gate
from fin_ia_pipeline.settings import PipelineSettings


def build_defs(settings: PipelineSettings) -> dg.Definitions:
    symbols = dg.StaticPartitionsDefinition(list(settings.symbols))
    return dg.Definitions(assets=build_multiverse_assets(settings, symbols),
                          asset_checks=[build_multiverse_gate(dg.AssetKey("multiverse_model"))])
