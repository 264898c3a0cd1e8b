"""The evaluation stage's Definitions: ``backtest_report`` and one champion gate per agent on it."""

import dagster as dg

from fin_ia_pipeline.agents.assets import AGENT_STAGES
from fin_ia_pipeline.evaluation.assets import build_evaluation_assets
from fin_ia_pipeline.evaluation.checks import build_agent_gate
from fin_ia_pipeline.settings import PipelineSettings


def build_defs(settings: PipelineSettings) -> dg.Definitions:
    return dg.Definitions(assets=build_evaluation_assets(settings),
                          asset_checks=[build_agent_gate(dg.AssetKey("backtest_report"), asset, stage.model_name)
                                        for asset, stage in AGENT_STAGES.items()])
