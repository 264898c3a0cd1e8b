"""The candle frame: the one contract every stage reads.

A candle frame is a ``pandas.DataFrame`` with exactly the columns ``timestamp open high low close volume``:
``timestamp`` is the candle OPEN time in int64 milliseconds since the epoch (UTC); prices and volume are float64.
Rows are sorted, unique and on the timeframe grid. ``symbol`` and ``timeframe`` travel in ``frame.attrs`` (and in
the parquet schema metadata when stored), so a frame always says what market it describes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CANDLE_COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

# Binance's kline intervals up to one day; each maps to its length in ms. Longer intervals (1w, 1M) are not on a
# fixed grid (months differ in length), so they are deliberately absent.
TIMEFRAME_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
}


def timeframe_ms(timeframe: str) -> int:
    """Length of one candle of ``timeframe`` in milliseconds; a clear error for unknown timeframes."""
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        raise ValueError(
            f"unknown timeframe {timeframe!r}: expected one of {', '.join(TIMEFRAME_MS)}"
        ) from None


def empty_candles(symbol: str, timeframe: str) -> pd.DataFrame:
    """A frame with the candle schema and no rows."""
    frame = pd.DataFrame(
        {"timestamp": np.empty(0, dtype=np.int64), **{c: np.empty(0, dtype=np.float64) for c in CANDLE_COLUMNS[1:]}}
    )
    return with_meta(frame, symbol, timeframe)


def with_meta(frame: pd.DataFrame, symbol: str, timeframe: str) -> pd.DataFrame:
    """Attach ``symbol`` and ``timeframe`` to a frame (in ``attrs``) and return it."""
    timeframe_ms(timeframe)  # reject unknown timeframes where the frame is made
    frame.attrs["symbol"] = symbol
    frame.attrs["timeframe"] = timeframe
    return frame


def to_candle_frame(rows, symbol: str, timeframe: str) -> pd.DataFrame:
    """Build a candle frame from ``[[ts, o, h, l, c, v], ...]`` (ccxt's OHLCV layout) or an array of that shape.

    Types are coerced (timestamp → int64, the rest → float64); nothing is sorted or filtered here: validation
    decides what is acceptable, so a bad row is reported, not silently repaired.
    """
    array = np.asarray(rows, dtype=np.float64) if len(rows) else np.empty((0, 6))
    if array.ndim != 2 or array.shape[1] != 6:
        raise ValueError(f"expected rows of 6 values [timestamp, open, high, low, close, volume], got shape {array.shape}")
    frame = pd.DataFrame({"timestamp": array[:, 0].astype(np.int64)})
    for i, column in enumerate(CANDLE_COLUMNS[1:], start=1):
        frame[column] = array[:, i]
    return with_meta(frame, symbol, timeframe)


def symbol_slug(symbol: str) -> str:
    """``BTC/USDT`` → ``BTCUSDT`` (Binance's market id, used in file names)."""
    return symbol.replace("/", "").replace(":", "").replace("-", "").upper()


def format_ms(ms: int) -> str:
    """Human-readable UTC time of a millisecond timestamp, for logs and error messages."""
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")
