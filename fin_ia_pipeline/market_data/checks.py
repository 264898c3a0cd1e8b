"""The checks of ``ohlcv_candles``, evaluated inside the asset's own step for every partition it writes.

Why inside: a backfill writes thousands of day partitions in one run (``BackfillPolicy``); a separate check step
would see the whole range as one unpartitioned input and could not report per partition, and every extra step is a
process start. So the asset declares the checks (``check_specs``: the UI lists them under the asset) and yields one
evaluation per partition it wrote:

- ``ohlc_consistent`` (blocking): the file as stored, re-read and verified (content hash, symbol, timeframe, day),
  passes every validation rule. A failure stops downstream steps of the run.
- ``gaps_within_tolerance`` (warning): missing candles stay under a share of the day's elapsed slots.
- ``candles_fresh`` (unpartitioned): judged only in runs that write the latest day (the hourly refresh): the newest
  stored candle of each refreshed symbol lags the last closed slot by at most a few candles. A historical backfill
  does not evaluate it, so it cannot turn red for days that are not supposed to be fresh.
"""

from __future__ import annotations

import dagster as dg

from fin_ia_models.data.schema import day_bounds_ms, format_ms, timeframe_ms
from fin_ia_models.data.storage import CorruptPartitionError
from fin_ia_models.data.validation import CandleValidationError, validate_candles

OHLC_CONSISTENT = "ohlc_consistent"
GAPS_WITHIN_TOLERANCE = "gaps_within_tolerance"
CANDLES_FRESH = "candles_fresh"
MAX_MISSING_FRACTION = 0.25  # Binance maintenance windows last a few hours: a quarter of a day is the alarm level
MAX_STALENESS_CANDLES = 2  # the refresh runs hourly; two candles of lag means it missed a run


def candle_check_specs(asset_key: dg.AssetKey, partitions_def: dg.PartitionsDefinition,
                       timeframe: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(OHLC_CONSISTENT, asset=asset_key, partitions_def=partitions_def, blocking=True,
                          description="The stored file, re-read and verified (hash, symbol, day), passes every "
                          "validation rule (OHLC bounds, grid, units, plausibility)."),
        dg.AssetCheckSpec(GAPS_WITHIN_TOLERANCE, asset=asset_key, partitions_def=partitions_def,
                          description=f"Missing candles stay under {MAX_MISSING_FRACTION:.0%} of the day's elapsed "
                          "slots."),
        dg.AssetCheckSpec(CANDLES_FRESH, asset=asset_key,
                          description="Judged when the latest day is refreshed: the newest stored candle is at most "
                          f"{MAX_STALENESS_CANDLES} {timeframe} candles behind the last closed slot."),
    ]


def ohlc_consistent(asset_key: dg.AssetKey, partition: str, read_back) -> dg.AssetCheckEvaluation:
    """``read_back()`` re-reads the stored file; its verification and validation decide the check."""
    try:
        frame = read_back()
        report = validate_candles(frame, frame.attrs["timeframe"])
    except (CandleValidationError, CorruptPartitionError) as err:
        return dg.AssetCheckEvaluation(asset_key=asset_key, check_name=OHLC_CONSISTENT, passed=False, blocking=True,
                                       partition=partition, metadata={"error": str(err)})
    return dg.AssetCheckEvaluation(asset_key=asset_key, check_name=OHLC_CONSISTENT, passed=True, blocking=True,
                                   partition=partition, metadata={"rows": report.rows})


def gaps_within_tolerance(asset_key: dg.AssetKey, partition: str, day: str, rows: int, timeframe: str,
                          now_ms: int) -> dg.AssetCheckEvaluation:
    step = timeframe_ms(timeframe)
    start, end = day_bounds_ms(day)
    elapsed = max(0, (min(end, now_ms - now_ms % step) - start) // step)
    missing = elapsed - rows
    return dg.AssetCheckEvaluation(asset_key=asset_key, check_name=GAPS_WITHIN_TOLERANCE, partition=partition,
                                   passed=missing <= MAX_MISSING_FRACTION * elapsed,
                                   severity=dg.AssetCheckSeverity.WARN,
                                   metadata={"missing_candles": int(missing), "expected_candles": int(elapsed)})


def candles_fresh(asset_key: dg.AssetKey, last_ms_by_symbol: dict[str, int], timeframe: str,
                  now_ms: int) -> dg.AssetCheckEvaluation:
    """Freshness of the symbols whose latest day this run refreshed (-1: no candle stored that day)."""
    step = timeframe_ms(timeframe)
    last_closed = now_ms - now_ms % step - step
    lags, stale = {}, []
    for symbol, last_ms in sorted(last_ms_by_symbol.items()):
        if last_ms < 0:
            lags[symbol], lag = "no candle today yet", None
        else:
            lag = (last_closed - last_ms) // step
            lags[symbol] = f"{lag} candles behind ({format_ms(last_ms)})"
        if lag is None or lag > MAX_STALENESS_CANDLES:
            stale.append(symbol)
    return dg.AssetCheckEvaluation(asset_key=asset_key, check_name=CANDLES_FRESH, passed=not stale, metadata=lags)
