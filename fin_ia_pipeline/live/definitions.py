"""The live stage's Definitions: ``paper_decisions`` and its hourly schedule (STOPPED by default: shadow decisions
cost CPU every hour and are turned on deliberately)."""

import dagster as dg

from fin_ia_pipeline.live.assets import build_paper_decisions
from fin_ia_pipeline.settings import PipelineSettings


def build_defs(settings: PipelineSettings) -> dg.Definitions:
    paper_decisions, hourly = build_paper_decisions(settings)
    job = dg.define_asset_job("paper_decisions_job", selection=dg.AssetSelection.assets(paper_decisions),
                              partitions_def=hourly,
                              description="Shadow decisions of the champion and candidate agents for one hour.")
    # ten past the hour: after hourly_candle_refresh (five past) has stored the hour's closed candle
    schedule = dg.build_schedule_from_partitioned_job(job, minute_of_hour=10,
                                                      default_status=dg.DefaultScheduleStatus.STOPPED,
                                                      name="hourly_paper_decisions")
    return dg.Definitions(assets=[paper_decisions], jobs=[job], schedules=[schedule])
