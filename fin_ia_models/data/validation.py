"""Validation of candle frames: every rule has a name, and a failure names the first offending row.

Rules (``CandleValidationError.rule``):
  columns            the frame has exactly timestamp/open/high/low/close/volume
  dtype              timestamp is an integer column, the rest are numeric
  timestamp_unit     timestamps are ms since the epoch (not seconds, not µs): 2009-01-01 <= t < 2100-01-01
  finite             no NaN/inf in prices or volume
  positive_price     open/high/low/close > 0
  nonnegative_volume volume >= 0
  low_bound          low <= min(open, close)  (and so low <= high)
  high_bound         high >= max(open, close)
  sorted             timestamps strictly increasing (checked before unique, so a swap is reported as such)
  unique             no repeated timestamp
  grid               every timestamp is a multiple of the timeframe (candles open on the grid)

Gaps (missing grid slots) and flat zero-volume candles are not errors: they are reported in ``ValidationReport`` so
the caller can surface them (Dagster metadata, asset checks) — they are never forward-filled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fin_ia_models.data.schema import CANDLE_COLUMNS, format_ms, timeframe_ms

# Plausible range of candle open times in ms. Anything below is almost surely seconds (or garbage); anything above,
# microseconds (Binance spot archives switched to µs in 2025).
MIN_TIMESTAMP_MS = 1_230_768_000_000  # 2009-01-01
MAX_TIMESTAMP_MS = 4_102_444_800_000  # 2100-01-01


class CandleValidationError(ValueError):
    """A candle frame broke a named rule; ``row`` is the positional index of the first offending row."""

    def __init__(
        self,
        rule: str,
        message: str,
        row: int | None = None,
        timestamp: int | None = None,
        count: int = 1,
        location: str | None = None,
    ):
        self.rule, self.row, self.timestamp, self.count, self.detail = rule, row, timestamp, count, message
        where = [] if location is None else [location]
        if row is not None:
            where.append(f"row {row}" + ("" if timestamp is None else f", t={timestamp} = {_fmt(timestamp)}"))
        where_text = (" " + where[0] + (f" ({', '.join(where[1:])})" if len(where) > 1 else "")) if where else ""
        if location is None and row is not None:
            where_text = f" at {where[0]}"
        more = f" [{count} rows break this rule]" if count > 1 else ""
        super().__init__(f"[{rule}]{where_text}: {message}{more}")


def _fmt(ms: int) -> str:
    if not 0 <= ms < MAX_TIMESTAMP_MS:
        return "not a valid ms time"
    return format_ms(ms) + " UTC"


@dataclass(frozen=True)
class Gap:
    """Missing candles between two present ones: slots ``(after, before)`` exclusive are absent."""

    after_ms: int  # open time of the last candle before the gap
    before_ms: int  # open time of the first candle after the gap
    missing: int  # number of absent candles

    def __str__(self) -> str:
        return f"{format_ms(self.after_ms)} → {format_ms(self.before_ms)} ({self.missing} missing)"


@dataclass(frozen=True)
class ValidationReport:
    """What a valid frame looks like: size, span, gaps and flagged maintenance candles."""

    rows: int
    first_ms: int | None
    last_ms: int | None
    gaps: tuple[Gap, ...] = field(default_factory=tuple)
    flat_zero_volume_ms: tuple[int, ...] = field(default_factory=tuple)  # open == high == low == close, volume == 0

    @property
    def missing_candles(self) -> int:
        return sum(g.missing for g in self.gaps)

    def summary(self) -> str:
        if self.rows == 0:
            return "0 candles"
        return (
            f"{self.rows} candles {format_ms(self.first_ms)} → {format_ms(self.last_ms)}; "
            f"{len(self.gaps)} gaps ({self.missing_candles} missing candles); "
            f"{len(self.flat_zero_volume_ms)} flat zero-volume candles"
        )


def _fail_where(mask: np.ndarray, rule: str, message: str, timestamps: np.ndarray | None) -> None:
    bad = np.flatnonzero(mask)
    if bad.size:
        row = int(bad[0])
        ts = int(timestamps[row]) if timestamps is not None else None
        raise CandleValidationError(rule, message, row=row, timestamp=ts, count=int(bad.size))


def find_gaps(timestamps: np.ndarray, timeframe: str) -> list[Gap]:
    """Gaps in a sorted, unique, on-grid timestamp array (vectorized; no python loop over candles)."""
    step = timeframe_ms(timeframe)
    ts = np.asarray(timestamps, dtype=np.int64)
    if ts.size < 2:
        return []
    diffs = np.diff(ts)
    idx = np.flatnonzero(diffs > step)
    return [Gap(int(ts[i]), int(ts[i + 1]), int(diffs[i] // step - 1)) for i in idx]


def validate_candles(frame: pd.DataFrame, timeframe: str) -> ValidationReport:
    """Check every rule (raising ``CandleValidationError`` on the first broken one) and report gaps.

    Rules are checked in an order where the first failure is the most informative: structure, then units, then
    values, then ordering.
    """
    step = timeframe_ms(timeframe)
    if list(frame.columns) != list(CANDLE_COLUMNS):
        raise CandleValidationError(
            "columns", f"expected columns {list(CANDLE_COLUMNS)}, got {list(frame.columns)}"
        )
    if not pd.api.types.is_integer_dtype(frame["timestamp"].dtype):
        raise CandleValidationError(
            "dtype", f"timestamp must be int64 milliseconds, got dtype {frame['timestamp'].dtype}"
        )
    for column in CANDLE_COLUMNS[1:]:
        if not pd.api.types.is_numeric_dtype(frame[column].dtype) or pd.api.types.is_bool_dtype(frame[column].dtype):
            raise CandleValidationError("dtype", f"{column} must be numeric, got dtype {frame[column].dtype}")
    if len(frame) == 0:
        return ValidationReport(rows=0, first_ms=None, last_ms=None)

    ts = frame["timestamp"].to_numpy(dtype=np.int64)
    _fail_where(
        ts < MIN_TIMESTAMP_MS, "timestamp_unit",
        f"timestamp before 2009 — looks like seconds, not milliseconds (expected >= {MIN_TIMESTAMP_MS})", ts,
    )
    _fail_where(
        ts >= MAX_TIMESTAMP_MS, "timestamp_unit",
        f"timestamp after 2100 — looks like microseconds, not milliseconds (expected < {MAX_TIMESTAMP_MS})", ts,
    )

    values = frame[list(CANDLE_COLUMNS[1:])].to_numpy(dtype=np.float64)  # (N, 5): o h l c v
    _fail_where(~np.isfinite(values).all(axis=1), "finite", "price or volume is NaN or infinite", ts)
    o, h, low, c, v = values.T
    _fail_where((values[:, :4] <= 0).any(axis=1), "positive_price", "open/high/low/close must be > 0", ts)
    _fail_where(v < 0, "nonnegative_volume", "volume must be >= 0", ts)
    _fail_where(low > np.minimum(o, c), "low_bound", "low must be <= min(open, close)", ts)
    _fail_where(h < np.maximum(o, c), "high_bound", "high must be >= max(open, close)", ts)

    diffs = np.diff(ts)
    back = np.concatenate([[False], diffs < 0])
    _fail_where(back, "sorted", "timestamp earlier than the previous row (rows out of order)", ts)
    dup = np.concatenate([[False], diffs == 0])
    _fail_where(dup, "unique", "timestamp repeats the previous row (duplicate candle)", ts)
    _fail_where(ts % step != 0, "grid", f"timestamp is not on the {timeframe} grid (not a multiple of {step} ms)", ts)

    flat = (o == h) & (h == low) & (low == c) & (v == 0)
    return ValidationReport(
        rows=len(ts),
        first_ms=int(ts[0]),
        last_ms=int(ts[-1]),
        gaps=tuple(find_gaps(ts, timeframe)),
        flat_zero_volume_ms=tuple(int(t) for t in ts[flat]),
    )
