"""The tokenizer stage's Definitions: its two assets and the champion gate of ``tokenizer_model``."""

import dagster as dg

from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tokenizer.assets import build_tokenizer_assets
from fin_ia_pipeline.tracking.promotion import TOKENIZER_GATES, build_champion_gate


def build_defs(settings: PipelineSettings) -> dg.Definitions:
    symbols = dg.StaticPartitionsDefinition(list(settings.symbols))
    return dg.Definitions(assets=build_tokenizer_assets(settings, symbols),
                          asset_checks=[build_champion_gate(dg.AssetKey("tokenizer_model"), TOKENIZER_GATES)])
