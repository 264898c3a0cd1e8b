"""The candle frame: the one contract every stage reads.

A candle frame is a ``pandas.DataFrame`` with exactly the columns ``timestamp open high low close volume``:
``timestamp`` is the candle OPEN time in int64 milliseconds since the epoch (UTC); prices and volume are float64.
Rows are sorted, unique and on the timeframe grid. ``symbol`` and ``timeframe`` travel in ``frame.attrs`` (and in
the parquet schema metadata when stored), so a frame always says what market it describes.
"""

from __future__ import annotations

import re

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
    columns = {"timestamp": array[:, 0].astype(np.int64)}
    columns.update((column, np.ascontiguousarray(array[:, i])) for i, column in enumerate(CANDLE_COLUMNS[1:], start=1))
    return with_meta(pd.DataFrame(columns), symbol, timeframe)  # one constructor: column-by-column inserts cost ~5x


# BASE/QUOTE, optionally :SETTLE (ccxt's unified symbol for derivatives, e.g. BTC/USDT:USDT); upper-case letters and
# digits only, so a symbol can never spell a path ('.', '..', '/', '\\'), whitespace or a shell metacharacter.
_SYMBOL_PART = r"[A-Z0-9]{1,20}"
_CANONICAL_SYMBOL = re.compile(rf"{_SYMBOL_PART}/{_SYMBOL_PART}(?::{_SYMBOL_PART})?")
SYMBOL_FORM = "BASE/QUOTE or BASE/QUOTE:SETTLE of A-Z and 0-9 (1-20 each), like BTC/USDT"


def _symbol_problem(symbol: str) -> str:
    """Which rule a non-canonical symbol breaks, most specific first (for the error message)."""
    if symbol == "":
        return "it is empty"
    if any(c.isspace() for c in symbol):
        return "it contains whitespace"
    if "\\" in symbol or symbol.count("/") > 1 or "." in symbol:
        return "it contains a path separator or '.' (a symbol must never name a path)"
    if "/" not in symbol:
        return "it has no '/' between BASE and QUOTE"
    base, _, rest = symbol.partition("/")
    quote, colon, settle = rest.partition(":")
    for name, part in (("BASE", base), ("QUOTE", quote)) + ((("SETTLE", settle),) if colon else ()):
        if not part:
            return f"its {name} is empty"
        if len(part) > 20:
            return f"its {name} is longer than 20 characters"
    if symbol != symbol.upper() and _CANONICAL_SYMBOL.fullmatch(symbol.upper()):
        return f"it is not upper case (write {symbol.upper()!r})"
    return "it holds characters other than A-Z, 0-9, one '/' and one optional ':'"


def canonical_symbol(symbol: str) -> str:
    """Return ``symbol`` if it is in the canonical form (``SYMBOL_FORM``), else raise ``ValueError`` naming it and
    the rule it breaks. Lower case is rejected, not upper-cased: ccxt symbols are case-sensitive, and silently
    turning one into another could fetch or overwrite a different market."""
    if not isinstance(symbol, str):
        raise ValueError(f"symbol must be a string like BTC/USDT, got {type(symbol).__name__} {symbol!r}")
    if _CANONICAL_SYMBOL.fullmatch(symbol) is None:
        raise ValueError(f"invalid symbol {symbol!r}: {_symbol_problem(symbol)}; expected {SYMBOL_FORM}")
    return symbol


def symbol_slug(symbol: str) -> str:
    """``BTC/USDT`` → ``BTCUSDT`` (Binance's market id, used in file and folder names). Only canonical symbols are
    accepted, so a slug is always a plain folder name; see ``check_symbols`` for slugs shared by two symbols."""
    return canonical_symbol(symbol).replace("/", "").replace(":", "")


def check_symbols(symbols) -> tuple[str, ...]:
    """Validate a configured list of symbols: each canonical, no two sharing one storage name (``symbol_slug``).

    Collisions are looked for before the form, on the letters and digits alone (upper-cased), so
    ``BTC/USDT`` + ``btc/usdt`` or ``BTC/USDT`` + ``BTC-USDT`` is reported naming both, not just as one malformed
    symbol; ``BTC/USDT`` + ``BTCU/SDT`` (both canonical, both stored as ``BTCUSDT``) is caught the same way.
    Returns the symbols as a tuple, in the given order.
    """
    symbols = tuple(symbols)
    if not symbols:
        raise ValueError("symbols must name at least one market, got none")
    seen: dict[str, str] = {}
    for symbol in symbols:
        key = re.sub(r"[^A-Za-z0-9]", "", symbol).upper() if isinstance(symbol, str) else repr(symbol)
        if key in seen:
            other = seen[key]
            if other == symbol:
                raise ValueError(f"symbol {symbol!r} is listed twice in the configured symbols")
            raise ValueError(
                f"symbols {other!r} and {symbol!r} map to the same storage name {key!r}: their candles would share "
                f"one file and overwrite each other; keep one, written as {SYMBOL_FORM}"
            )
        seen[key] = symbol
    for symbol in symbols:
        canonical_symbol(symbol)
    return symbols


def day_bounds_ms(day: str) -> tuple[int, int]:
    """``[start, end)`` of a UTC calendar day ``YYYY-MM-DD`` in ms (the span of one stored partition)."""
    try:
        start = int(pd.Timestamp(day, tz="UTC").value // 1_000_000)
    except ValueError as err:
        raise ValueError(f"day must be a date like 2024-01-05, got {day!r} ({err})") from None
    if start % DAY_MS:
        raise ValueError(f"day must be a date like 2024-01-05, got {day!r}")
    return start, start + DAY_MS


def format_ms(ms: int) -> str:
    """Human-readable UTC time of a millisecond timestamp, for logs and error messages."""
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")
