"""Parquet storage of candle frames: one file per symbol / timeframe / day, written atomically.

Atomic means a reader sees either the old file or the complete new one, never a torn write: locally the table is
written to a temporary sibling and moved into place with ``os.replace``; on object stores (s3://, gs://) a single
PUT is already atomic, so the object is written directly. A frame is validated before anything touches the target,
so bad data never replaces good data.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from fin_ia_models.data.schema import CANDLE_COLUMNS, symbol_slug, with_meta
from fin_ia_models.data.validation import ValidationReport, validate_candles

_SCHEMA = pa.schema(
    [("timestamp", pa.int64())] + [(c, pa.float64()) for c in CANDLE_COLUMNS[1:]]
)


def candle_partition_relpath(symbol: str, timeframe: str, day: str) -> str:
    """``BTCUSDT/1h/2024-01-05.parquet``: the layout every reader and writer of stored candles shares."""
    return f"{symbol_slug(symbol)}/{timeframe}/{day}.parquet"


def _is_local(path: UPath | Path) -> bool:
    return isinstance(path, Path) and getattr(path, "protocol", "") in ("", "file", "local")


def write_candles_parquet(frame: pd.DataFrame, path: str | os.PathLike | UPath) -> ValidationReport:
    """Validate ``frame`` (attrs must carry symbol and timeframe) and write it to ``path`` atomically."""
    symbol, timeframe = frame.attrs.get("symbol"), frame.attrs.get("timeframe")
    if not symbol or not timeframe:
        raise ValueError("candle frame must carry attrs['symbol'] and attrs['timeframe'] to be stored")
    report = validate_candles(frame, timeframe)  # raises before anything is written
    table = pa.Table.from_pandas(frame[list(CANDLE_COLUMNS)], schema=_SCHEMA, preserve_index=False)
    table = table.replace_schema_metadata({b"symbol": symbol.encode(), b"timeframe": timeframe.encode()})
    write_table_atomic(table, path)
    return report


def write_table_atomic(table: pa.Table, path: str | os.PathLike | UPath) -> None:
    """Write a parquet table so readers see the old file or the whole new one: temporary sibling + ``os.replace``
    locally; one PUT on object stores (already atomic)."""
    target = UPath(path)
    if _is_local(target):
        local = Path(target.path)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex}.tmp")
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as handle:
            pq.write_table(table, handle)


def read_candles_parquet(path: str | os.PathLike | UPath) -> pd.DataFrame:
    """Read a stored candle file back into a frame with its symbol/timeframe attrs."""
    target = UPath(path)
    with target.open("rb") as handle:
        table = pq.read_table(handle)
    meta = table.schema.metadata or {}
    if b"symbol" not in meta or b"timeframe" not in meta:
        raise ValueError(f"{path} has no symbol/timeframe in its parquet metadata: not a stored candle file")
    return with_meta(table.to_pandas(), meta[b"symbol"].decode(), meta[b"timeframe"].decode())
