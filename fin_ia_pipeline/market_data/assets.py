"""``ohlcv_candles``: validated exchange candles, one parquet file per symbol × day.

One step writes one partition (a click in the UI, the hourly refresh) or a whole range of them (a backfill: the
``BackfillPolicy`` groups the selected days of a symbol into one run, so the full history is a couple of runs, not
thousands). Every partition is refreshed, written atomically, re-read and checked on its own, and recorded as its
own materialization with its own metadata as soon as it is done: a failing day does not lose the others, and the
run then fails naming the failed days.
"""

import time

import dagster as dg
import pandas as pd

from fin_ia_models.data.schema import day_bounds_ms, format_ms, timeframe_ms
from fin_ia_pipeline.market_data import checks
from fin_ia_pipeline.market_data.partitions import DATE_DIM, SYMBOL_DIM
from fin_ia_pipeline.market_data.resources import CandleStoreResource, MarketSourceResource

MARKET_DATA = "market_data"
CANDLES = dg.AssetKey("ohlcv_candles")
# Days per backfill run: a year of a symbol per run bounds what one failure costs to retry while keeping the full
# 2017-2024 history of two symbols to ~16 runs (the daemon runs up to 4 at once).
DAYS_PER_BACKFILL_RUN = 366
LOG_EVERY = 50


def candle_metadata(frame: pd.DataFrame, report, path: str | None = None) -> dict:
    """Materialization metadata a user scans in the UI: size, span, gaps."""
    gap_lines = "\n".join(f"- {g}" for g in report.gaps[:20]) or "none"
    meta = {
        "rows": dg.MetadataValue.int(report.rows),
        "first_candle": dg.MetadataValue.text(format_ms(report.first_ms) + " UTC" if report.rows else "-"),
        "last_candle": dg.MetadataValue.text(format_ms(report.last_ms) + " UTC" if report.rows else "-"),
        "last_candle_ms": dg.MetadataValue.int(report.last_ms if report.rows else -1),
        "gaps": dg.MetadataValue.int(len(report.gaps)),
        "missing_candles": dg.MetadataValue.int(report.missing_candles),
        "gap_spans": dg.MetadataValue.md(gap_lines),
        "flat_zero_volume_candles": dg.MetadataValue.int(len(report.flat_zero_volume_ms)),
    }
    if path is not None:
        meta["path"] = dg.MetadataValue.path(path)
    return meta


def refresh_partition(context, source, store: CandleStoreResource, key: dg.MultiPartitionKey, now_ms: int,
                      verbose: bool = True):
    """Refresh, write and re-check one (symbol, day): yields its materialization and check evaluations, returns
    its one-line summary (logged here when ``verbose``)."""
    from fin_ia_models.data.refresh import refresh_stored_day

    symbol, day = key.keys_by_dimension[SYMBOL_DIM], key.keys_by_dimension[DATE_DIM]
    result = refresh_stored_day(source, symbol, store.timeframe, day, store.path(symbol, day), now_ms=now_ms)
    store.write(symbol, day, result.frame)
    if result.repaired:
        context.log.warning(f"{symbol} {day}: the stored file could not be trusted ({result.repaired}); fetched "
                            "the whole day again")
    if result.conflicts:
        context.log.warning(f"{symbol} {day}: {result.conflicts} stored candles differ from what {source.name} "
                            "reports now; stored values kept")
    metadata = candle_metadata(result.frame, result.report, str(store.path(symbol, day)))
    metadata.update(source=source.name, fetched=result.fetched, added=result.added, conflicts=result.conflicts,
                    repaired=result.repaired or "no")
    yield dg.AssetMaterialization(CANDLES, partition=str(key), metadata=metadata)
    yield checks.ohlc_consistent(CANDLES, str(key), lambda: store.read(symbol, day))
    yield checks.gaps_within_tolerance(CANDLES, str(key), day, len(result.frame), store.timeframe, now_ms)
    line = (f"{symbol} {day} from {source.name}: {result.fetched} fetched since {format_ms(result.requested_from_ms)}, "
            f"{result.added} new; {result.report.summary()}")
    if verbose:
        context.log.info(line)
    return line


def build_ohlcv_candles(partitions_def: dg.MultiPartitionsDefinition, timeframe: str) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="ohlcv_candles",
        outs={"ohlcv_candles": dg.AssetOut(
            is_required=False, io_manager_key="candle_io_manager", group_name=MARKET_DATA, kinds={"pandas", "parquet"},
            code_version="2", description=(
                "Closed OHLCV candles of one symbol for one UTC day, validated (OHLC bounds, grid, units, "
                "plausibility) with gaps reported, never filled, stored with a content hash. Re-materializing fetches "
                "only candles after the last stored one, and repairs a corrupt or foreign file."))},
        partitions_def=partitions_def,
        can_subset=True,
        check_specs=checks.candle_check_specs(CANDLES, partitions_def, timeframe),
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_BACKFILL_RUN),
    )
    def ohlcv_candles(context: dg.AssetExecutionContext, market_source: MarketSourceResource,
                      candle_store: CandleStoreResource):
        from fin_ia_models.data.sources.base import MarketDataError, MarketNotFoundError
        from fin_ia_models.data.validation import CandleValidationError

        source, now_ms = market_source.get_source(), int(time.time() * 1000)
        keys = [partitions_def.get_partition_key_from_str(k) for k in context.partition_keys]
        failed, transient = {}, False
        # Every log line is an event-log write (a sqlite commit on the embedded instance, as costly as the work of
        # a whole day of candles): one line per partition for small runs, progress every LOG_EVERY days otherwise.
        verbose = len(keys) <= LOG_EVERY
        started = time.perf_counter()
        for i, key in enumerate(keys, start=1):
            try:
                line = yield from refresh_partition(context, source, candle_store, key, now_ms, verbose)
                if not verbose and (i % LOG_EVERY == 0 or i == len(keys)):
                    context.log.info(f"{i}/{len(keys)} partitions in {time.perf_counter() - started:.0f}s; last: {line}")
            except MarketNotFoundError as err:  # no such file or market: asking again cannot help
                raise dg.Failure(str(err), allow_retries=False) from err
            except MarketDataError as err:  # the source already retried with backoff; a later attempt may succeed
                failed[str(key)], transient = str(err), True
            except CandleValidationError as err:  # bad data: never stored, named by rule and row
                failed[str(key)] = str(err)
        yield from fresh_evaluation(keys, candle_store, now_ms)
        if failed and transient:
            context.log.error(f"{len(failed)} of {len(keys)} partitions failed: {failed}")
            raise dg.RetryRequested(max_retries=2, seconds_to_wait=60)
        if failed:
            lines = "\n".join(f"- {k}: {v}" for k, v in list(failed.items())[:20])
            raise dg.Failure(f"{len(failed)} of {len(keys)} ohlcv_candles partitions failed; the other "
                             f"{len(keys) - len(failed)} were stored and checked:\n{lines}")

    return ohlcv_candles


def fresh_evaluation(keys: list[dg.MultiPartitionKey], store: CandleStoreResource, now_ms: int):
    """``candles_fresh`` for the symbols whose latest (today's) partition this run wrote; nothing otherwise."""
    today = pd.Timestamp(now_ms, unit="ms", tz="UTC").strftime("%Y-%m-%d")
    symbols = sorted({k.keys_by_dimension[SYMBOL_DIM] for k in keys if k.keys_by_dimension[DATE_DIM] == today})
    if not symbols:
        return
    yesterday = pd.Timestamp(day_bounds_ms(today)[0] - timeframe_ms("1d"), unit="ms", tz="UTC").strftime("%Y-%m-%d")
    last_ms = {}
    for symbol in symbols:  # the newest stored candle: today's, or yesterday's during the first hour of a day
        frames = [f for f in (store.read(symbol, today), store.read(symbol, yesterday)) if f is not None and len(f)]
        last_ms[symbol] = max((int(f["timestamp"].iloc[-1]) for f in frames), default=-1)
    yield checks.candles_fresh(CANDLES, last_ms, store.timeframe, now_ms)
