"""Turn loaded ``ohlcv_candles`` partitions into one continuous frame per symbol, cut to a time range."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from fin_ia_models.data.schema import CANDLE_COLUMNS, with_meta
from fin_ia_models.data.validation import validate_candles


def series_by_symbol(partitions: Mapping[str, pd.DataFrame], start_ms: int | None = None,
                     end_ms: int | None = None) -> dict[str, pd.DataFrame]:
    """Concatenate day partitions per symbol (their ``attrs``), keep ``[start_ms, end_ms)``, validate the result."""
    grouped: dict[str, list[pd.DataFrame]] = {}
    timeframes: dict[str, str] = {}
    for frame in partitions.values():
        symbol = frame.attrs["symbol"]
        grouped.setdefault(symbol, []).append(frame)
        timeframes[symbol] = frame.attrs["timeframe"]
    out = {}
    for symbol, frames in sorted(grouped.items()):
        series = pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="stable")
        if start_ms is not None:
            series = series[series["timestamp"] >= start_ms]
        if end_ms is not None:
            series = series[series["timestamp"] < end_ms]
        series = with_meta(series[list(CANDLE_COLUMNS)].reset_index(drop=True), symbol, timeframes[symbol])
        validate_candles(series, timeframes[symbol])  # day files are valid; this catches overlaps between them
        if len(series):
            out[symbol] = series
    return out
