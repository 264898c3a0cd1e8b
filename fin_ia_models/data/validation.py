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
  price_range        min_price <= open/high/low/close <= max_price          (plausibility, see plausibility.py)
  volume_range       volume <= max_volume                                    (plausibility)
  wick_ratio         high / low <= max_high_low_ratio                         (plausibility)
  close_jump         close-to-close move between consecutive rows <= max_close_jump, up or down (plausibility)
  timeframe          (``check_declared_timeframe``, for whole files) the most common spacing of the candles is the
                     declared timeframe: daily candles in a file named ``_1h`` are reported as such, not as gaps

Gaps (missing grid slots) and flat zero-volume candles are not errors: they are reported in ``ValidationReport`` so
the caller can surface them (Dagster metadata, asset checks) — they are never forward-filled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fin_ia_models.data.plausibility import DEFAULT_LIMITS, PlausibilityLimits
from fin_ia_models.data.schema import CANDLE_COLUMNS, TIMEFRAME_MS, format_ms, timeframe_ms

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


def validate_candles(
    frame: pd.DataFrame, timeframe: str, limits: PlausibilityLimits | None = None
) -> ValidationReport:
    """Check every rule (raising ``CandleValidationError`` on the first broken one) and report gaps.

    Rules are checked in an order where the first failure is the most informative: structure, then units, then
    values, then ordering, then plausibility (``limits``, default ``DEFAULT_LIMITS``).
    """
    limits = DEFAULT_LIMITS if limits is None else limits
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
    _check_plausible(values, ts, limits)

    flat = (o == h) & (h == low) & (low == c) & (v == 0)
    return ValidationReport(
        rows=len(ts),
        first_ms=int(ts[0]),
        last_ms=int(ts[-1]),
        gaps=tuple(find_gaps(ts, timeframe)),
        flat_zero_volume_ms=tuple(int(t) for t in ts[flat]),
    )


def _fail_first(mask: np.ndarray, rule: str, describe, timestamps: np.ndarray) -> None:
    """Like ``_fail_where``, with a message built from the first offending row (so it can quote the value)."""
    bad = np.flatnonzero(mask)
    if bad.size:
        row = int(bad[0])
        raise CandleValidationError(rule, describe(row), row=row, timestamp=int(timestamps[row]), count=int(bad.size))


def _check_plausible(values: np.ndarray, ts: np.ndarray, limits: PlausibilityLimits) -> None:
    """The plausibility rules on finite, positive, OHLC-consistent, sorted values ``(N, 5)``."""
    prices = values[:, :4]  # (N, 4): o h l c
    out = (prices < limits.min_price) | (prices > limits.max_price)  # (N, 4)

    def price_message(row: int) -> str:
        column = CANDLE_COLUMNS[1 + int(np.flatnonzero(out[row])[0])]
        return (f"{column} = {values[row, CANDLE_COLUMNS.index(column) - 1]:.6g} is outside the plausible range "
                f"[{limits.min_price:g}, {limits.max_price:g}] (PlausibilityLimits.min_price/max_price)")

    _fail_first(out.any(axis=1), "price_range", price_message, ts)
    volume, high, low, close = values[:, 4], values[:, 1], values[:, 2], values[:, 3]
    _fail_first(volume > limits.max_volume, "volume_range", lambda r: (
        f"volume = {volume[r]:.6g} exceeds the plausible {limits.max_volume:g} (PlausibilityLimits.max_volume)"), ts)
    ratio = high / low  # (N,) >= 1 once low_bound/high_bound hold; low > 0 by positive_price
    _fail_first(ratio > limits.max_high_low_ratio, "wick_ratio", lambda r: (
        f"high/low = {high[r]:.6g}/{low[r]:.6g} = {ratio[r]:.6g} exceeds max_high_low_ratio = "
        f"{limits.max_high_low_ratio:g} within one candle (PlausibilityLimits)"), ts)
    if len(close) > 1:
        jump = close[1:] / close[:-1]  # (N-1,) move from the previous row's close
        big = np.concatenate([[False], (jump > limits.max_close_jump) | (jump * limits.max_close_jump < 1.0)])
        _fail_first(big, "close_jump", lambda r: (
            f"close moved {close[r - 1]:.6g} -> {close[r]:.6g} ({jump[r - 1]:.6g}x) from the previous row, beyond "
            f"max_close_jump = {limits.max_close_jump:g} (PlausibilityLimits)"), ts)


def _spacing_name(ms: int) -> str:
    names = {v: k for k, v in TIMEFRAME_MS.items()}
    return names.get(int(ms), f"{int(ms)} ms (not a known timeframe)")


def check_declared_timeframe(timestamps: np.ndarray, timeframe: str, declared_by: str = "the caller") -> None:
    """Raise ``CandleValidationError`` (rule ``timeframe``) if the candles are mostly spaced by something other than
    the declared ``timeframe``: daily candles in a file named ``_1h`` sit on the 1h grid with only "gaps" between
    them, so the grid rule cannot see it. For whole files, not for one day's partition (a day may hold only a few
    candles around a maintenance window). Needs two spacings that agree; fewer candles are not judged."""
    step = timeframe_ms(timeframe)
    diffs = np.diff(np.asarray(timestamps, dtype=np.int64))
    diffs = diffs[diffs > 0]
    if diffs.size < 2 or 2 * np.count_nonzero(diffs == step) > diffs.size:
        return  # the declared spacing is the majority: nothing to infer (the common case, one vectorized count)
    values, counts = np.unique(diffs, return_counts=True)
    best = int(np.argmax(counts))
    inferred, agreeing = int(values[best]), int(counts[best])
    if inferred == step or agreeing < 2:
        return
    raise CandleValidationError(
        "timeframe",
        f"candles are {_spacing_name(inferred)} apart ({agreeing} of {diffs.size} spacings; inferred timeframe "
        f"{_spacing_name(inferred)}), but {declared_by} declares {timeframe}: wrong file or wrong timeframe",
    )
