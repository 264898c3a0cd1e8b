"""``make demo`` / ``fin-ia demo``: materialize the whole asset graph on the embedded defaults, offline.

Embedded defaults: the sqlite Dagster instance in ``dagster_home/``, parquet and checkpoints under
``.fin_ia/storage`` and the seeded synthetic market (no network). The window is the ``demo`` profile's time split
(train, val, test), so every stage trains and is scored out of sample. Every run lands in the instance, so
``make ui`` shows what the demo produced.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from fin_ia_pipeline.definitions import build_definitions
from fin_ia_pipeline.market_data.partitions import candle_partition_key
from fin_ia_pipeline.settings import PipelineSettings

log = logging.getLogger("fin_ia.demo")
# Dagster's own step events are DEBUG; INFO keeps the assets' progress lines (epochs, probe scores).
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
# The demo window holds ~4k training patches, not the ~40k the demo profile's 6 epochs are sized for: more passes.
DEMO_TOKENIZER_EPOCHS = 40


def demo_dates(settings: PipelineSettings) -> list[str]:
    split = settings.time_split()
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(split.train_start, split.test_end, freq="D")]


def _meta(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
    raise RuntimeError(f"{asset} was not materialized")


def run_demo(settings: PipelineSettings, instance: dg.DagsterInstance) -> dict:
    """Materialize every stage over the demo window; return a summary of what was produced."""
    defs = build_definitions(settings)
    candle_job = defs.resolve_job_def("refresh_candles")
    started = time.perf_counter()
    summary: dict = {"candles": 0, "gaps": 0, "failed_partitions": 0, "dates": demo_dates(settings)}
    for symbol in settings.symbols:
        for day in summary["dates"]:
            result = candle_job.execute_in_process(
                partition_key=candle_partition_key(symbol, day), instance=instance, raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
            if not result.success:
                summary["failed_partitions"] += 1
                log.error("ohlcv_candles %s %s failed", symbol, day)
                continue
            meta = _meta(result, "ohlcv_candles")
            summary["candles"] += meta["rows"]
            summary["gaps"] += meta["gaps"]
        log.info("ohlcv_candles %s: %d days materialized", symbol, len(summary["dates"]))
    summary["candle_seconds"] = round(time.perf_counter() - started, 1)
    if summary["failed_partitions"]:
        return summary

    assets = list(defs.assets)

    def materialize(name: str, partition: str | None = None, config: dict | None = None) -> dict:
        run_config = {**QUIET, **({"ops": {name: {"config": config}}} if config else {})}
        result = dg.materialize(assets, selection=[name], partition_key=partition, resources=defs.resources,
                                instance=instance, run_config=run_config)
        return _meta(result, name)

    t = time.perf_counter()
    summary["tokenizer_model"] = materialize("tokenizer_model", config={"epochs": DEMO_TOKENIZER_EPOCHS})
    summary["token_sequences"] = {s: materialize("token_sequences", s) for s in settings.symbols}
    summary["jepa_encoder"] = materialize("jepa_encoder")
    summary["jepa_embeddings"] = {s: materialize("jepa_embeddings", s) for s in settings.symbols}
    summary["model_seconds"] = round(time.perf_counter() - t, 1)
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
    if "tokenizer_model" in summary:
        tok, jepa = summary["tokenizer_model"], summary["jepa_encoder"]
        seqs = ", ".join(f"{s} {m['rows']} tokens" for s, m in summary["token_sequences"].items())
        embs = ", ".join(f"{s} {m['rows']}×{m['dim']}" for s, m in summary["jepa_embeddings"].items())
        lines += [
            f"  tokenizer_model   {tok['quantizer']}: test-window utilization {tok['utilization']:.1%} "
            f"(uniform ceiling for {tok['test_patches']} patches: {tok['uniform_expected_utilization']:.1%}), "
            f"perplexity {tok['perplexity']:.1f}, recon MAE {tok['recon_mae']:.4g} "
            f"(patch-mean baseline {tok['recon_mae_patch_mean_baseline']:.4g})",
            f"  token_sequences   {seqs}",
            f"  jepa_encoder      {jepa['steps']} steps, final loss {jepa['final_loss']:.4g}, effective rank "
            f"{jepa['collapse_effective_rank']:.1f}/{int(jepa['collapse_dim'])}; test-window probe R² of next-24h "
            f"realized vol: JEPA {jepa['probe_jepa_rv_r2']:.3f} vs raw features {jepa['probe_raw_rv_r2']:.3f}",
            f"  jepa_embeddings   {embs}",
            f"  models took       {summary['model_seconds']} s",
            f"  storage           {summary['storage']} (ohlcv_candles/, models/, frames/)",
            f"  dagster instance  {summary['dagster_home']} (runs, materializations, check results)",
            "",
            "Synthetic data: these scores show the pipeline works end to end, not that a model is any good;",
            "docs/RESULTS.md has the measurements on real Binance candles.",
            "Look at it: `make ui` → http://127.0.0.1:3000 → Assets (lineage graph, metadata, plots, checks).",
        ]
    return "\n".join(lines)
