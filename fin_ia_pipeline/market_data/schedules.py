"""Hourly refresh of today's candle partition for every symbol (and yesterday's during the first hour of a day,
so the candle that closed at midnight lands in the day it belongs to)."""


import dagster as dg
import pandas as pd

from fin_ia_pipeline.market_data.partitions import candle_partition_key


def build_refresh_schedule(job, symbols: tuple[str, ...]) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="hourly_candle_refresh",
        cron_schedule="5 * * * *",  # five minutes past the hour: the last hourly candle has closed
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Fetch the candles closed since the last refresh into today's partition of every symbol.",
    )
    def hourly_candle_refresh(context: dg.ScheduleEvaluationContext):
        now = pd.Timestamp(context.scheduled_execution_time).tz_convert("UTC")
        days = [now.strftime("%Y-%m-%d")]
        if now.hour == 0:
            days.insert(0, (now - pd.Timedelta(days=1)).strftime("%Y-%m-%d"))
        for day in days:
            for symbol in symbols:
                key = candle_partition_key(symbol, day)
                yield dg.RunRequest(run_key=f"{key}@{now.isoformat()}", partition_key=key)

    return hourly_candle_refresh
