"""Asset checks of ``ohlcv_candles``: OHLC consistency of what was stored, gaps within tolerance, freshness."""


import time

import dagster as dg
import pandas as pd

from fin_ia_models.data.refresh import day_bounds_ms
from fin_ia_models.data.schema import format_ms, timeframe_ms
from fin_ia_models.data.validation import CandleValidationError, validate_candles
from fin_ia_pipeline.market_data.partitions import DATE_DIM, candle_partition_key


def build_candle_checks(
    asset: dg.AssetsDefinition,
    symbols: tuple[str, ...],
    timeframe: str,
    max_missing_fraction: float = 0.25,
    max_staleness_candles: int = 2,
) -> list[dg.AssetChecksDefinition]:
    """``max_missing_fraction``: share of a day's candles that may be absent (Binance maintenance windows last a few
    hours) before the gaps check warns. ``max_staleness_candles``: how many candle lengths the newest stored candle may
    lag behind the last closed slot before the freshness check fails (the refresh runs hourly)."""
    partitions_def = asset.partitions_def
    step = timeframe_ms(timeframe)

    @dg.asset_check(asset=asset, partitions_def=partitions_def, blocking=True,
                    description="Stored candles re-read from disk pass every validation rule (OHLC bounds, grid, units).")
    def ohlc_consistent(ohlcv_candles: pd.DataFrame) -> dg.AssetCheckResult:
        try:
            report = validate_candles(ohlcv_candles, timeframe)
        except CandleValidationError as err:
            return dg.AssetCheckResult(passed=False, metadata={"rule": err.rule, "error": str(err)})
        return dg.AssetCheckResult(passed=True, metadata={"rows": report.rows})

    @dg.asset_check(asset=asset, partitions_def=partitions_def,
                    description=f"Missing candles in the day stay under {max_missing_fraction:.0%} of its elapsed slots.")
    def gaps_within_tolerance(context: dg.AssetCheckExecutionContext, ohlcv_candles: pd.DataFrame) -> dg.AssetCheckResult:
        day = context.partition_key.keys_by_dimension[DATE_DIM]
        start, end = day_bounds_ms(day)
        now = int(time.time() * 1000)
        elapsed_slots = max(0, (min(end, now - now % step) - start) // step)
        missing = elapsed_slots - len(ohlcv_candles)
        return dg.AssetCheckResult(
            passed=missing <= max_missing_fraction * elapsed_slots,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"missing_candles": int(missing), "expected_candles": int(elapsed_slots)},
        )

    @dg.asset_check(asset=asset, description="Today's partition of every symbol holds the last closed candle "
                    f"(at most {max_staleness_candles} {timeframe} candles behind).")
    def candles_fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        now = int(time.time() * 1000)
        last_closed = now - now % step - step
        today = pd.Timestamp(now, unit="ms", tz="UTC").strftime("%Y-%m-%d")
        lags, stale = {}, []
        for symbol in symbols:
            key = str(candle_partition_key(symbol, today))
            event = _latest_for_partition(context.instance, asset.key, key)
            last_ms = -1 if event is None else int(event.asset_materialization.metadata["last_candle_ms"].value)
            lag = (last_closed - last_ms) // step if last_ms >= 0 else None
            lags[symbol] = "never materialized" if lag is None else f"{lag} candles behind ({format_ms(last_ms)})"
            if lag is None or lag > max_staleness_candles:
                stale.append(symbol)
        return dg.AssetCheckResult(passed=not stale, metadata={"partition_date": today, **lags})

    return [ohlc_consistent, gaps_within_tolerance, candles_fresh]


def _latest_for_partition(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
    ).records
    return records[0].event_log_entry if records else None
