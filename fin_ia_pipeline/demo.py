"""``make demo`` / ``fin-ia demo``: materialize the whole asset graph on the embedded defaults, offline.

Embedded defaults: the sqlite Dagster instance in ``dagster_home/``, parquet under ``.fin_ia/storage`` and the seeded
synthetic market (no network). Every run lands in the instance, so ``make ui`` shows what the demo produced.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd

from fin_ia_pipeline.definitions import build_definitions
from fin_ia_pipeline.market_data.partitions import candle_partition_key
from fin_ia_pipeline.settings import PipelineSettings

log = logging.getLogger("fin_ia.demo")


@dataclass(frozen=True)
class DemoWindow:
    end: str = "2024-12-31"  # last day materialized (fixed, so the synthetic demo is the same every time)
    days: int = 30  # number of daily partitions per symbol

    def dates(self) -> list[str]:
        if self.days < 1:
            raise ValueError(f"demo days must be >= 1, got {self.days}")
        end = pd.Timestamp(self.end)
        return [(end - pd.Timedelta(days=i)).strftime("%Y-%m-%d") for i in range(self.days - 1, -1, -1)]


def run_demo(window: DemoWindow, settings: PipelineSettings, instance: dg.DagsterInstance) -> dict:
    """Materialize every stage for the window; return a summary of what was produced."""
    defs = build_definitions(settings)
    job = defs.get_job_def("refresh_candles")
    started = time.perf_counter()
    rows = gaps = failures = 0
    for symbol in settings.symbols:
        for day in window.dates():
            result = job.execute_in_process(
                partition_key=candle_partition_key(symbol, day), instance=instance, raise_on_error=False
            )
            if not result.success:
                failures += 1
                log.error("ohlcv_candles %s %s failed", symbol, day)
                continue
            for event in result.get_asset_materialization_events():
                meta = event.event_specific_data.materialization.metadata
                rows += meta["rows"].value
                gaps += meta["gaps"].value
        log.info("ohlcv_candles %s: %d days materialized", symbol, len(window.dates()))
    return {
        "partitions": len(settings.symbols) * window.days,
        "failed_partitions": failures,
        "candles": rows,
        "gaps": gaps,
        "seconds": round(time.perf_counter() - started, 1),
        "storage": str(Path(settings.storage_root).resolve()),
        "dagster_home": os.environ.get("DAGSTER_HOME", ""),
    }


def format_summary(summary: dict, settings: PipelineSettings, window: DemoWindow) -> str:
    dates = window.dates()
    return "\n".join(
        [
            "",
            "fin-ia demo — what was produced",
            f"  source            {settings.source} (seed {settings.seed}), timeframe {settings.timeframe}",
            f"  ohlcv_candles     {summary['partitions']} partitions ({', '.join(settings.symbols)} × "
            f"{dates[0]} … {dates[-1]}), {summary['candles']} candles, {summary['gaps']} gaps, "
            f"{summary['failed_partitions']} failed",
            f"  parquet           {summary['storage']}/ohlcv_candles/<SYMBOL>/<timeframe>/<day>.parquet",
            f"  dagster instance  {summary['dagster_home']} (runs, materializations, check results)",
            f"  took              {summary['seconds']} s",
            "",
            "Look at it: `make ui` → http://127.0.0.1:3000 → Assets → ohlcv_candles (partitions, metadata, checks).",
        ]
    )
