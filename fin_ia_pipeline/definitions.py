"""Entry point of the code location: merges every stage's Definitions.

Settings come from the environment (see ``fin_ia_pipeline.settings``) when ``build_definitions`` runs; tests call it
with explicit settings.
"""

from __future__ import annotations

import dagster as dg

from fin_ia_pipeline.market_data.definitions import build_market_data_defs
from fin_ia_pipeline.settings import PipelineSettings


def build_definitions(settings: PipelineSettings | None = None) -> dg.Definitions:
    settings = settings or PipelineSettings.from_env()
    return dg.Definitions.merge(build_market_data_defs(settings))


defs = build_definitions()
