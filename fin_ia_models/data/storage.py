"""Parquet storage of candle frames: one file per symbol / timeframe / day, written atomically and verified on read.

Atomic: files go through ``fin_ia_models.utils.atomic.atomic_write`` (temporary sibling, fsync, ``os.replace``;
one PUT on object stores), so a reader sees the old file or the complete new one, never a torn write. A frame is
validated before anything touches the target, so bad data never replaces good data; and each writer removes the
temporaries that killed writers left in its folder (``remove_stale_temporaries``, by age).

Verified: each file records in its parquet metadata the SHA-256 of its values (``candle_content_hash``) and the
symbol, timeframe and (when given) partition day it holds. ``read_candles_parquet`` recomputes the hash and compares
the metadata with the partition the caller expects; any difference (a flipped bit, an ETH file in the BTC place, a
truncated file) raises ``CorruptPartitionError`` naming the file, the partition and what differs. Files written
before hashes existed ("legacy", no ``content_sha256`` key) are still read: their metadata is checked the same way
and, having no hash to prove them intact, their values are re-validated; the next write of the partition adds the
hash.
"""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from fin_ia_models.data.plausibility import PlausibilityLimits
from fin_ia_models.data.schema import (
    CANDLE_COLUMNS,
    canonical_symbol,
    day_bounds_ms,
    symbol_slug,
    timeframe_ms,
    with_meta,
)
from fin_ia_models.data.validation import CandleValidationError, ValidationReport, validate_candles
from fin_ia_models.utils.atomic import atomic_write

_SCHEMA = pa.schema(
    [("timestamp", pa.int64())] + [(c, pa.float64()) for c in CANDLE_COLUMNS[1:]]
)
# parquet key-value metadata; symbol/timeframe keep their original names so legacy files read unchanged
SYMBOL_KEY, TIMEFRAME_KEY, DAY_KEY, HASH_KEY = b"symbol", b"timeframe", b"day", b"content_sha256"


class CorruptPartitionError(ValueError):
    """A stored candle file is unreadable, altered, or holds another partition than the one expected.

    A ``ValueError`` like every "this content is wrong" error of the data layer (``CandleValidationError``); not a
    ``MarketDataError``: reading the same bytes again cannot help, re-materializing the partition repairs it.
    ``path``, ``partition`` and ``reason`` are kept for callers that log or repair.
    """

    def __init__(self, path, partition: str | None, reason: str):
        self.path, self.partition, self.reason = str(path), partition, reason
        what = f"candle partition {partition} at {path}" if partition else f"candle file {path}"
        super().__init__(f"corrupt {what}: {reason}")


def candle_partition_relpath(symbol: str, timeframe: str, day: str) -> str:
    """``BTCUSDT/1h/2024-01-05.parquet``: the layout every reader and writer of stored candles shares. Each part is
    checked (canonical symbol, known timeframe, a real ``YYYY-MM-DD`` day) so no input can name another path."""
    timeframe_ms(timeframe)
    if not (isinstance(day, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", day)):
        raise ValueError(f"day must be a date like 2024-01-05, got {day!r}")
    day_bounds_ms(day)  # rejects 2024-02-30
    return f"{symbol_slug(symbol)}/{timeframe}/{day}.parquet"


def candle_content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 (hex) of a candle frame's values: row count, then each column's little-endian int64/float64 bytes in
    ``CANDLE_COLUMNS`` order. Metadata is not hashed (it is compared with the expected partition instead), so equal
    values give equal hashes wherever they are stored."""
    digest = hashlib.sha256(b"fin-ia candles v1\0")
    digest.update(np.int64(len(frame)).astype("<i8").tobytes())
    for column in CANDLE_COLUMNS:
        dtype = "<i8" if column == "timestamp" else "<f8"
        digest.update(column.encode() + b"\0")
        digest.update(np.ascontiguousarray(frame[column].to_numpy(), dtype=dtype).tobytes())
    return digest.hexdigest()


def _check_in_day(frame: pd.DataFrame, day: str) -> str | None:
    """Why ``frame`` does not belong to the UTC ``day`` (a candle opening outside it), or None."""
    start, end = day_bounds_ms(day)
    ts = frame["timestamp"].to_numpy()
    outside = np.flatnonzero((ts < start) | (ts >= end))
    if outside.size:
        first = int(ts[outside[0]])
        return f"{outside.size} candles open outside the day {day} (first at t={first})"
    return None


def write_candles_parquet(
    frame: pd.DataFrame,
    path: str | os.PathLike | UPath,
    day: str | None = None,
    limits: PlausibilityLimits | None = None,
) -> ValidationReport:
    """Validate ``frame`` (attrs must carry a canonical symbol and the timeframe; every candle inside ``day`` when
    given) and write it to ``path`` atomically, recording its content hash, symbol, timeframe and day."""
    symbol, timeframe = frame.attrs.get("symbol"), frame.attrs.get("timeframe")
    if not symbol or not timeframe:
        raise ValueError("candle frame must carry attrs['symbol'] and attrs['timeframe'] to be stored")
    canonical_symbol(symbol)
    report = validate_candles(frame, timeframe, limits)  # raises before anything is written
    if day is not None and (problem := _check_in_day(frame, day)) is not None:
        raise CandleValidationError("partition_day", f"cannot store as {symbol} {timeframe} {day}: {problem}")
    table = pa.Table.from_pandas(frame[list(CANDLE_COLUMNS)], schema=_SCHEMA, preserve_index=False)
    meta = {SYMBOL_KEY: symbol.encode(), TIMEFRAME_KEY: timeframe.encode(), HASH_KEY: candle_content_hash(frame).encode()}
    if day is not None:
        meta[DAY_KEY] = day.encode()
    write_table_atomic(table.replace_schema_metadata(meta), path)
    return report


def write_table_atomic(table: pa.Table, path: str | os.PathLike | UPath) -> None:
    """Write a parquet table with the project's atomic writer (which also deletes temporaries that killed writers
    left in the same folder: older than ``STALE_AFTER_S``; a write in progress is never that old)."""
    atomic_write(UPath(path), lambda handle: pq.write_table(table, handle))


def _describe(symbol: str | None, timeframe: str | None, day: str | None) -> str | None:
    """``BTC/USDT 1h 2024-01-05`` from what the caller expects; None if it expects nothing."""
    return " ".join(p for p in (symbol, timeframe, day) if p) or None


def read_candles_parquet(
    path: str | os.PathLike | UPath,
    expect_symbol: str | None = None,
    expect_timeframe: str | None = None,
    expect_day: str | None = None,
) -> pd.DataFrame:
    """Read a stored candle file back into a frame with its symbol/timeframe attrs, verifying it.

    Raises ``CorruptPartitionError`` if the file is not readable parquet, lacks the candle schema or metadata,
    holds another symbol/timeframe/day than expected (``expect_*``; None skips that comparison), or its values no
    longer match the recorded content hash. A missing file raises ``FileNotFoundError`` as before.
    """
    target = UPath(path)
    partition = _describe(expect_symbol, expect_timeframe, expect_day)

    def corrupt(reason: str) -> CorruptPartitionError:
        return CorruptPartitionError(path, partition, reason)

    try:
        with target.open("rb") as handle:
            table = pq.read_table(handle)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (pa.ArrowException, OSError, ValueError, MemoryError) as err:  # truncated, garbled footer or pages
        raise corrupt(f"unreadable parquet ({type(err).__name__}: {err})") from err
    if not table.schema.equals(_SCHEMA, check_metadata=False):
        raise corrupt(f"schema differs from the candle schema: {table.schema.remove_metadata().to_string()!r}")
    meta = table.schema.metadata or {}
    if SYMBOL_KEY not in meta or TIMEFRAME_KEY not in meta:
        raise corrupt("no symbol/timeframe in its parquet metadata: not a stored candle file")
    try:
        symbol, timeframe = meta[SYMBOL_KEY].decode(), meta[TIMEFRAME_KEY].decode()
        day = meta[DAY_KEY].decode() if DAY_KEY in meta else None
        recorded = meta[HASH_KEY].decode() if HASH_KEY in meta else None
    except UnicodeDecodeError as err:
        raise corrupt(f"metadata is not UTF-8 text ({err})") from err
    for name, expected, stored in (("symbol", expect_symbol, symbol), ("timeframe", expect_timeframe, timeframe)):
        if expected is not None and stored != expected:
            raise corrupt(f"{name} mismatch: the file holds {stored!r}, the partition is {expected!r}")
    if expect_day is not None and day is not None and day != expect_day:
        raise corrupt(f"day mismatch: the file holds {day!r}, the partition is {expect_day!r}")
    try:
        frame = with_meta(table.to_pandas(), symbol, timeframe)
    except ValueError as err:  # an unknown timeframe string in the metadata
        raise corrupt(str(err)) from err
    if recorded is not None:
        actual = candle_content_hash(frame)
        if actual != recorded:
            raise corrupt(f"content hash mismatch: recorded sha256 {recorded[:16]}…, values hash to {actual[:16]}…")
    else:  # legacy file: nothing proves the values intact, so at least they must still pass every rule
        try:
            validate_candles(frame, timeframe)
        except CandleValidationError as err:
            raise corrupt(f"legacy file (no content hash) whose values break a rule: {err}") from err
    if expect_day is not None and (problem := _check_in_day(frame, expect_day)) is not None:
        raise corrupt(f"day mismatch: {problem}")
    return frame
