"""Day partitions → one continuous candle series per symbol, and time windows of per-row frames.

Stored candles are one frame per symbol × day (``ohlcv_candles``); every learned stage reads whole histories, so the
days of a symbol are concatenated, cut to ``[start_ms, end_ms)`` and validated again (each day file is valid on its
own; this catches overlaps between them).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from fin_ia_models.data.schema import CANDLE_COLUMNS, with_meta
from fin_ia_models.data.validation import validate_candles


def series_by_symbol(partitions: Mapping[str, pd.DataFrame], start_ms: int | None = None,
                     end_ms: int | None = None) -> dict[str, pd.DataFrame]:
    """Concatenate day frames per symbol (read from their ``attrs``), keep ``[start_ms, end_ms)``, validate.
    Symbols with no candle in the range are absent from the result."""
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
        validate_candles(series, timeframes[symbol])
        if len(series):
            out[symbol] = series
    return out


def in_window(frame: pd.DataFrame, start_ms: int, end_ms: int, column: str = "end_timestamp") -> pd.DataFrame:
    """Rows of ``frame`` with ``start_ms <= frame[column] < end_ms`` (attrs kept)."""
    mask = (frame[column] >= start_ms) & (frame[column] < end_ms)
    out = frame[mask].reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    return out


def windows_by_symbol(frames: Mapping[str, pd.DataFrame], start_ms: int, end_ms: int,
                      column: str = "end_timestamp") -> dict[str, pd.DataFrame]:
    """``in_window`` of every frame, dropping symbols left empty."""
    cut = {symbol: in_window(frame, start_ms, end_ms, column) for symbol, frame in sorted(frames.items())}
    return {symbol: frame for symbol, frame in cut.items() if len(frame)}
