"""``ohlcv_candles``: validated exchange candles, one parquet file per symbol × day."""


import time

import dagster as dg
import pandas as pd

from fin_ia_models.data.refresh import refresh_stored_day
from fin_ia_models.data.schema import format_ms
from fin_ia_models.data.sources.base import MarketDataError, MarketNotFoundError
from fin_ia_pipeline.market_data.partitions import DATE_DIM, SYMBOL_DIM
from fin_ia_pipeline.market_data.resources import CandleStoreResource, MarketSourceResource

MARKET_DATA = "market_data"


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


def build_ohlcv_candles(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name="ohlcv_candles",
        group_name=MARKET_DATA,
        partitions_def=partitions_def,
        io_manager_key="candle_io_manager",
        kinds={"pandas", "parquet"},
        code_version="1",
        description=(
            "Closed OHLCV candles of one symbol for one UTC day, validated (OHLC bounds, grid, units) with gaps "
            "reported, never filled. Re-materializing fetches only candles after the last stored one."
        ),
    )
    def ohlcv_candles(
        context: dg.AssetExecutionContext,
        market_source: MarketSourceResource,
        candle_store: CandleStoreResource,
    ) -> dg.Output[pd.DataFrame]:
        keys = context.partition_key.keys_by_dimension
        symbol, day = keys[SYMBOL_DIM], keys[DATE_DIM]
        source = market_source.get_source()
        try:
            result = refresh_stored_day(source, symbol, candle_store.timeframe, day, candle_store.path(symbol, day),
                                        now_ms=int(time.time() * 1000))
        except MarketDataError as err:
            # The source already retried with backoff; a later attempt may find the exchange back. Bad data
            # (CandleValidationError) is not retried: it fails at once, naming the row and the rule.
            raise dg.RetryRequested(max_retries=2, seconds_to_wait=60) from err
        except MarketNotFoundError as err:  # no such file or market: asking again cannot help
            raise dg.Failure(str(err), allow_retries=False) from err
        if result.repaired:
            context.log.warning(f"{symbol} {day}: the stored file could not be trusted ({result.repaired}); "
                                "fetched the whole day again")
        context.log.info(
            f"{symbol} {day} from {source.name}: {result.fetched} fetched since {format_ms(result.requested_from_ms)}, "
            f"{result.added} new; {result.report.summary()}"
        )
        if result.conflicts:
            context.log.warning(
                f"{result.conflicts} stored candles differ from what {source.name} reports now; stored values kept"
            )
        metadata = candle_metadata(result.frame, result.report, str(candle_store.path(symbol, day)))
        metadata.update(
            source=dg.MetadataValue.text(source.name),
            fetched=dg.MetadataValue.int(result.fetched),
            added=dg.MetadataValue.int(result.added),
            conflicts=dg.MetadataValue.int(result.conflicts),
            repaired=dg.MetadataValue.text(result.repaired or "no"),
        )
        return dg.Output(result.frame, metadata=metadata)

    return ohlcv_candles
