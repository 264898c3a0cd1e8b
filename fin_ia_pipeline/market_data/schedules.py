"""Hourly refresh of today's candle partition of every symbol (and yesterday's during the first hour of a day, so
the candle that closed at midnight lands in the day it belongs to) — one run for all of them."""

import dagster as dg
import pandas as pd
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from fin_ia_pipeline.market_data.partitions import candle_partition_key


def build_refresh_schedule(job, symbols: tuple[str, ...]) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="hourly_candle_refresh",
        cron_schedule="5 * * * *",  # five minutes past the hour: the last hourly candle has closed
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Fetch the candles closed since the last refresh into today's partition of every symbol "
        "(one run for all symbols; the freshness check is judged in it).",
    )
    def hourly_candle_refresh(context: dg.ScheduleEvaluationContext):
        now = pd.Timestamp(context.scheduled_execution_time).tz_convert("UTC")
        yield dg.RunRequest(run_key=f"refresh@{now.isoformat()}", tags=hourly_run_request_tags(symbols, now))

    return hourly_candle_refresh


def hourly_run_request_tags(symbols, now: pd.Timestamp | None = None) -> dict[str, str]:
    """The partition range of one hourly refresh: every symbol (a contiguous run of the static dimension) × today,
    from yesterday during the first hour of a day."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    first_day = (now - pd.Timedelta(days=1)) if now.hour == 0 else now
    start = candle_partition_key(symbols[0], first_day.strftime("%Y-%m-%d"))
    end = candle_partition_key(symbols[-1], now.strftime("%Y-%m-%d"))
    return {ASSET_PARTITION_RANGE_START_TAG: str(start), ASSET_PARTITION_RANGE_END_TAG: str(end)}
