"""Bring one stored day of candles up to date from a market source (incremental, never destructive).

Used by the ``ohlcv_candles`` asset for one (symbol, day) partition: only candles after the last stored one are
requested (so the hourly refresh of "today" costs one small request), then merged with what is stored. Stored
candles are closed and final; if the source reports a different value for one of them the stored value is kept and
the disagreement is returned so the caller can log it — new data never silently rewrites history.

The exception is a stored file that cannot be trusted: unreadable, altered (content hash mismatch) or holding
another partition (an ETH file in the BTC place). ``refresh_stored_day`` then discards it with a warning and fetches
the whole day again, so re-materializing repairs the partition instead of keeping, or relabelling, foreign data.
Whatever is returned is validated; the caller writes it with ``write_candles_parquet`` (validated again), so bad
data never replaces a file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
from upath import UPath

from fin_ia_models.data.plausibility import PlausibilityLimits
from fin_ia_models.data.schema import (  # day_bounds_ms is re-exported: callers import it from here
    CANDLE_COLUMNS,
    day_bounds_ms,
    empty_candles,
    timeframe_ms,
    with_meta,
)
from fin_ia_models.data.sources.base import MarketSource
from fin_ia_models.data.storage import CorruptPartitionError, read_candles_parquet
from fin_ia_models.data.validation import ValidationReport, validate_candles

logger = logging.getLogger("fin_ia.data.refresh")


@dataclass(frozen=True)
class DayRefresh:
    frame: pd.DataFrame  # every candle of the day known now: stored + new, validated
    report: ValidationReport  # gaps and flagged candles of ``frame``
    fetched: int  # candles the source returned for this refresh
    added: int  # of those, candles not stored before
    conflicts: int  # stored candles the source now reports differently (stored value kept)
    requested_from_ms: int  # start of the range asked from the source
    repaired: str | None = None  # why the stored file was discarded and the day fetched whole again; None if kept


@dataclass(frozen=True)
class StoredDay:
    frame: pd.DataFrame | None  # the verified stored day; None if absent or discarded
    problem: str | None  # why the stored file was discarded (CorruptPartitionError message); None if fine or absent


def load_stored_day(path: str | os.PathLike | UPath, symbol: str, timeframe: str, day: str) -> StoredDay:
    """Read the stored partition at ``path`` verified against (symbol, timeframe, day). A corrupt, foreign or
    unreadable file is reported in ``problem`` (and logged as a warning) instead of raised, so the caller can
    fetch the day again; a missing file is simply absent."""
    target = UPath(path)
    if not target.exists():
        return StoredDay(None, None)
    try:
        return StoredDay(read_candles_parquet(target, symbol, timeframe, day), None)
    except CorruptPartitionError as err:
        logger.warning("%s; discarding it and fetching the day again", err)
        return StoredDay(None, str(err))


def refresh_stored_day(
    source: MarketSource,
    symbol: str,
    timeframe: str,
    day: str,
    path: str | os.PathLike | UPath,
    now_ms: int,
    limits: PlausibilityLimits | None = None,
) -> DayRefresh:
    """``refresh_day`` on the partition stored at ``path``, repairing it when it cannot be trusted (see module
    docstring): ``repaired`` in the result says why. Nothing is written here."""
    stored = load_stored_day(path, symbol, timeframe, day)
    result = refresh_day(source, symbol, timeframe, day, stored.frame, now_ms, limits)
    if stored.problem is None:
        return result
    return DayRefresh(result.frame, result.report, result.fetched, result.added, result.conflicts,
                      result.requested_from_ms, repaired=stored.problem)


def _check_stored(stored: pd.DataFrame, symbol: str, timeframe: str, start: int, end: int, limits) -> None:
    """A stored frame handed in must be this partition's: same symbol and timeframe, every candle in the day.
    Otherwise merging would relabel another market's candles as this one's."""
    for name, expected in (("symbol", symbol), ("timeframe", timeframe)):
        held = stored.attrs.get(name)
        if held is not None and held != expected:
            raise ValueError(f"stored frame holds {name} {held!r} but the partition being refreshed is {expected!r}")
    validate_candles(stored, timeframe, limits)
    ts = stored["timestamp"].to_numpy()
    if len(ts) and (ts[0] < start or ts[-1] >= end):
        raise ValueError(f"stored frame holds candles outside the day being refreshed ([{start}, {end}) ms)")


def refresh_day(
    source: MarketSource,
    symbol: str,
    timeframe: str,
    day: str,
    stored: pd.DataFrame | None,
    now_ms: int,
    limits: PlausibilityLimits | None = None,
) -> DayRefresh:
    """Fetch what is missing of ``day`` after the last ``stored`` candle and return the merged, validated day."""
    step = timeframe_ms(timeframe)
    start, end = day_bounds_ms(day)
    end = min(end, now_ms - now_ms % step)  # candles opening at/after the current slot are still open
    stored = stored if stored is not None else empty_candles(symbol, timeframe)
    _check_stored(stored, symbol, timeframe, *day_bounds_ms(day), limits)
    since = int(stored["timestamp"].iloc[-1]) + step if len(stored) else start
    fetched = source.fetch(symbol, timeframe, since, end) if since < end else empty_candles(symbol, timeframe)
    fetched = fetched[(fetched["timestamp"] >= start) & (fetched["timestamp"] < end)]
    validate_candles(fetched.reset_index(drop=True), timeframe, limits)

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
    report = validate_candles(merged, timeframe, limits)
    return DayRefresh(merged, report, len(fetched), len(new), conflicts, since)
