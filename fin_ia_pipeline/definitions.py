"""Entry point of the code location: merges every stage's Definitions.

Settings come from the environment (see ``fin_ia_pipeline.settings``) when ``build_definitions`` runs; tests call it
with explicit settings.
"""

from __future__ import annotations

import dagster as dg

from fin_ia_pipeline.market_data.definitions import build_market_data_defs
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tokenizer.definitions import build_tokenizer_defs
from fin_ia_pipeline.world_model.definitions import build_world_model_defs


def build_definitions(settings: PipelineSettings | None = None) -> dg.Definitions:
    settings = settings or PipelineSettings.from_env()
    return dg.Definitions.merge(build_market_data_defs(settings), build_tokenizer_defs(settings),
                                build_world_model_defs(settings))


defs = build_definitions()
