"""The agents stage's Definitions: ``ppo_agent`` and ``cvar_planner_agent`` (their champion gate is on the
evaluation stage's ``backtest_report``, which produces the validation backtest it reads)."""

import dagster as dg

from fin_ia_pipeline.agents.assets import build_agent_assets
from fin_ia_pipeline.settings import PipelineSettings


def build_defs(settings: PipelineSettings) -> dg.Definitions:
    return dg.Definitions(assets=build_agent_assets(settings))
