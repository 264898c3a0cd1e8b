"""Bring one stored day of candles up to date from a market source (incremental, never destructive).

Used by the ``ohlcv_candles`` asset for one (symbol, day) partition: only candles after the last stored one are
requested (so the hourly refresh of "today" costs one small request), then merged with what is stored. Stored
candles are closed and final; if the source reports a different value for one of them the stored value is kept and
the disagreement is returned so the caller can log it — new data never silently rewrites history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fin_ia_models.data.schema import CANDLE_COLUMNS, DAY_MS, empty_candles, timeframe_ms, with_meta
from fin_ia_models.data.sources.base import MarketSource
from fin_ia_models.data.validation import ValidationReport, validate_candles


@dataclass(frozen=True)
class DayRefresh:
    frame: pd.DataFrame  # every candle of the day known now: stored + new, validated
    report: ValidationReport  # gaps and flagged candles of ``frame``
    fetched: int  # candles the source returned for this refresh
    added: int  # of those, candles not stored before
    conflicts: int  # stored candles the source now reports differently (stored value kept)
    requested_from_ms: int  # start of the range asked from the source


def day_bounds_ms(day: str) -> tuple[int, int]:
    """``[start, end)`` of a UTC calendar day ``YYYY-MM-DD`` in ms."""
    start = int(pd.Timestamp(day, tz="UTC").value // 1_000_000)
    if start % DAY_MS:
        raise ValueError(f"day must be a date like 2024-01-05, got {day!r}")
    return start, start + DAY_MS


def refresh_day(
    source: MarketSource,
    symbol: str,
    timeframe: str,
    day: str,
    stored: pd.DataFrame | None,
    now_ms: int,
) -> DayRefresh:
    """Fetch what is missing of ``day`` after the last ``stored`` candle and return the merged, validated day."""
    step = timeframe_ms(timeframe)
    start, end = day_bounds_ms(day)
    end = min(end, now_ms - now_ms % step)  # candles opening at/after the current slot are still open
    stored = stored if stored is not None else empty_candles(symbol, timeframe)
    validate_candles(stored, timeframe)
    since = int(stored["timestamp"].iloc[-1]) + step if len(stored) else start
    fetched = source.fetch(symbol, timeframe, since, end) if since < end else empty_candles(symbol, timeframe)
    fetched = fetched[(fetched["timestamp"] >= start) & (fetched["timestamp"] < end)]
    validate_candles(fetched.reset_index(drop=True), timeframe)

    overlap = fetched["timestamp"].isin(stored["timestamp"])
    conflicts = 0
    if overlap.any():
        joined = stored.merge(fetched[overlap], on="timestamp", suffixes=("", "_new"))
        cols = list(CANDLE_COLUMNS[1:])
        conflicts = int((~np.isclose(joined[cols].to_numpy(), joined[[c + "_new" for c in cols]].to_numpy(),
                                     rtol=1e-9, atol=0.0)).any(axis=1).sum())
    new = fetched[~overlap]
    merged = pd.concat([stored, new], ignore_index=True).sort_values("timestamp", kind="stable").reset_index(drop=True)
    merged = with_meta(merged[list(CANDLE_COLUMNS)], symbol, timeframe)
    report = validate_candles(merged, timeframe)
    return DayRefresh(merged, report, len(fetched), len(new), conflicts, since)
