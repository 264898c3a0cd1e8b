"""``make demo`` / ``fin-ia demo``: materialize the whole asset graph on the embedded defaults, offline.

Embedded defaults: the sqlite Dagster instance in ``dagster_home/``, parquet and checkpoints under
``.fin_ia/storage`` and the seeded synthetic market (no network). The window is the ``demo`` profile's time split
(train, val, test), so every stage trains and is scored out of sample. The demo walks the asset graph in
topological order and materializes each asset over its own partitions, with its checks (the champion gates
included: ``@champion`` exists afterwards for every model whose gate passed, and each refusal is tagged with its
reason); hourly assets (``paper_decisions``) run last, on the window's final hours. It names no stage. Every run
lands in the instance, so ``make ui`` shows what the demo produced.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from fin_ia_pipeline.definitions import build_definitions
from fin_ia_pipeline.market_data.assets import MARKET_DATA
from fin_ia_pipeline.market_data.partitions import candle_partition_key
from fin_ia_pipeline.settings import PipelineSettings

log = logging.getLogger("fin_ia.demo")
# Dagster's own step events are DEBUG; INFO keeps the assets' progress lines (epochs, probe scores).
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def demo_dates(settings: PipelineSettings) -> list[str]:
    split = settings.time_split()
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(split.train_start, split.test_end, freq="D")]


def _metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key == key:
            return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
    raise RuntimeError(f"{key.to_user_string()} was not materialized")


def _materialize_candles(defs: dg.Definitions, settings: PipelineSettings, instance, summary: dict) -> None:
    """Every (symbol, day) of the demo window in one run, the way a backfill does it (a partition range)."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    dates = summary["dates"]
    result = defs.resolve_job_def("refresh_candles").execute_in_process(
        instance=instance, raise_on_error=False, run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        tags={ASSET_PARTITION_RANGE_START_TAG: str(candle_partition_key(settings.symbols[0], dates[0])),
              ASSET_PARTITION_RANGE_END_TAG: str(candle_partition_key(settings.symbols[-1], dates[-1]))})
    events = result.get_asset_materialization_events()
    for event in events:
        meta = event.event_specific_data.materialization.metadata
        summary["candles"] += meta["rows"].value
        summary["gaps"] += meta["gaps"].value
    summary["failed_partitions"] = len(settings.symbols) * len(dates) - len(events)
    if summary["failed_partitions"]:
        log.error("ohlcv_candles: %d partitions failed (see the run in the UI)", summary["failed_partitions"])
    log.info("ohlcv_candles: %d partitions materialized in one run", len(events))


LIVE_HOURS = 2  # paper decisions of the last hours of the demo window: the live path's wiring, not a track record


def run_demo(settings: PipelineSettings, instance: dg.DagsterInstance) -> dict:
    """Materialize every asset over the demo window, in graph order; return a summary of what was produced."""
    defs = build_definitions(settings)
    started = time.perf_counter()
    summary: dict = {"candles": 0, "gaps": 0, "failed_partitions": 0, "dates": demo_dates(settings), "assets": {},
                     "checks": []}
    _materialize_candles(defs, settings, instance, summary)
    summary["candle_seconds"] = round(time.perf_counter() - started, 1)
    if summary["failed_partitions"]:
        return summary

    graph = defs.resolve_asset_graph()
    everything = [*defs.assets, *defs.asset_checks]
    live: list[tuple[dg.AssetKey, list[str]]] = []
    started = time.perf_counter()
    for key in graph.toposorted_asset_keys:
        if graph.get(key).group_name == MARKET_DATA:
            continue
        partitions_def = defs.resolve_assets_def(key).partitions_def
        partitions = partitions_def.get_partition_keys() if partitions_def else [None]
        if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
            # hourly live assets (paper decisions) run after every model exists, on the demo window's last hours
            live.append((key, [p for p in partitions if p.startswith(summary["dates"][-1])][-LIVE_HOURS:]))
            continue
        for partition in partitions:
            result = dg.materialize(everything, selection=dg.AssetSelection.assets(key), partition_key=partition,
                                    resources=defs.resources, instance=instance, run_config=QUIET)
            summary["assets"].setdefault(key.to_user_string(), {})[partition] = _metadata(result, key)
            summary["checks"] += [(e.asset_key.to_user_string(), e.check_name, e.passed,
                                   e.metadata.get("reason", dg.MetadataValue.text("")).value)
                                  for e in result.get_asset_check_evaluations()]
    for key, partitions in live:
        for partition in partitions:
            result = dg.materialize(everything, selection=dg.AssetSelection.assets(key), partition_key=partition,
                                    resources=defs.resources, instance=instance, run_config=QUIET)
            summary["assets"].setdefault(key.to_user_string(), {})[partition] = _metadata(result, key)
    summary["model_seconds"] = round(time.perf_counter() - started, 1)
    summary["storage"] = str(Path(settings.storage_root).resolve())
    summary["dagster_home"] = os.environ.get("DAGSTER_HOME", "")
    return summary


def format_summary(summary: dict, settings: PipelineSettings) -> str:
    dates = summary["dates"]
    lines = [
        "",
        "fin-ia demo — what was produced",
        f"  source            {settings.source} (seed {settings.seed}), timeframe {settings.timeframe}, "
        f"profile {settings.profile}",
        f"  ohlcv_candles     {len(settings.symbols) * len(dates)} partitions ({', '.join(settings.symbols)} × "
        f"{dates[0]} … {dates[-1]}): {summary['candles']} candles, {summary['gaps']} gaps, "
        f"{summary['failed_partitions']} failed ({summary['candle_seconds']} s)",
    ]
    for asset, by_partition in summary["assets"].items():
        parts = [(f"{p}: " if p else "") + str(m.get("summary", f"{m.get('rows', '?')} rows"))
                 for p, m in by_partition.items()]
        lines.append(f"  {asset:<17} " + "; ".join(parts))
    for asset, check, passed, reason in summary["checks"]:
        lines.append(f"  check {asset}.{check}: {'passed' if passed else 'did not pass'}"
                     + (f" ({reason})" if reason else ""))
    if "model_seconds" in summary:
        lines += [
            f"  models took       {summary['model_seconds']} s",
            f"  storage           {summary['storage']} (ohlcv_candles/, models/, frames/)",
            f"  dagster instance  {summary['dagster_home']} (runs, materializations, check results)",
            "",
            "Synthetic data: these scores show the pipeline works end to end, not that a model is any good;",
            "docs/RESULTS.md has the measurements on real Binance candles.",
            "Look at it: `make ui` → http://127.0.0.1:3000 → Assets (lineage graph, metadata, plots, checks).",
        ]
    report = summary["assets"].get("backtest_report", {}).get(None, {})
    if "table_test" in report:  # the evaluation stage's test-window table (agents vs baselines, after costs)
        lines += ["", f"Backtest on the test window ({report.get('symbols', '')}, one equal-capital book, "
                      f"{report.get('costs_bps', '?')} bps per unit traded; DSR over {report.get('n_trials', '?')} "
                      "agent trials):", str(report["table_test"])]
    return "\n".join(lines)
