"""Candles from local files: the project's CSV/parquet format and Binance's public kline archives.

Formats, detected from the file itself (never from its name or date):
- project CSV (``../shared/data/binance/*.csv``): header ``timestamp_ms,open,high,low,close,volume`` (``timestamp``
  is accepted as the first column name too), open time in ms;
- parquet with the candle columns (what this project stores);
- Binance archive CSV (data.binance.vision ``klines``): 12 columns ``open_time, open, high, low, close, volume,
  close_time, quote_volume, trades, taker_base, taker_quote, ignore``, usually without a header. Spot archives
  switched from ms to µs open times in 2025, so the unit is detected per file from the magnitude of the open time AND
  confirmed by ``close_time - open_time`` (one candle minus one tick), which must agree.

Every file is validated on load; an error names the file, the line and the rule. Nothing is repaired silently.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from fin_ia_models.data.schema import CANDLE_COLUMNS, TIMEFRAME_MS, symbol_slug, timeframe_ms, with_meta
from fin_ia_models.data.sources.base import MarketDataError
from fin_ia_models.data.validation import MAX_TIMESTAMP_MS, CandleValidationError, validate_candles

ARCHIVE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume",
    "close_time", "quote_volume", "trades", "taker_base", "taker_quote", "ignore",
)
# BTCUSDT_1h.csv, BTCUSDT-1h-2024-01.csv, BTCUSDT-1h-2024-01-05.csv, ...; group 1 = market id, group 2 = timeframe
_NAME = re.compile(r"^([A-Z0-9]+)[_-](%s)(?:[_-].*)?$" % "|".join(sorted(TIMEFRAME_MS, key=len, reverse=True)))


class CandleFileError(CandleValidationError):
    """A candle file is malformed; the message names the file (and line when known) and the rule."""


def _file_error(path: Path, rule: str, message: str, line: int | None = None) -> CandleFileError:
    return CandleFileError(rule, message, location=f"{path}" + (f", line {line}" if line is not None else ""))


def parse_file_name(path: str | os.PathLike) -> tuple[str, str] | None:
    """``(market id, timeframe)`` encoded in a candle file's name, or None if the name does not follow it."""
    match = _NAME.match(Path(path).name.split(".")[0])
    return (match.group(1), match.group(2)) if match else None


def _detect_unit(path: Path, open_time: np.ndarray, close_time: np.ndarray, timeframe: str | None) -> int:
    """Divisor turning archive times into ms: 1 for ms files, 1000 for µs files. Raises if the evidence disagrees."""
    if open_time.size == 0:
        return 1
    by_magnitude = 1000 if open_time.max() >= MAX_TIMESTAMP_MS else 1
    if by_magnitude == 1000 and open_time.min() < MAX_TIMESTAMP_MS:
        raise _file_error(path, "timestamp_unit", "open times mix milliseconds and microseconds")
    span = int(np.median(close_time - open_time)) + 1  # close_time is the last tick of the candle
    if timeframe is not None:
        expected = {1: timeframe_ms(timeframe), 1000: timeframe_ms(timeframe) * 1000}[by_magnitude]
        if span != expected:
            raise _file_error(
                path, "timestamp_unit",
                f"close_time - open_time = {span - 1} does not match one {timeframe} candle in "
                f"{'µs' if by_magnitude == 1000 else 'ms'} ({expected - 1}); unit or timeframe is wrong",
            )
    return by_magnitude


def _read_archive_csv(path: Path, header: bool, timeframe: str | None) -> pd.DataFrame:
    raw = pd.read_csv(path, header=0 if header else None, names=ARCHIVE_COLUMNS, dtype=np.float64)
    open_time = raw["open_time"].to_numpy()
    close_time = raw["close_time"].to_numpy()
    if not (np.isfinite(open_time).all() and np.isfinite(close_time).all()):
        bad = int(np.flatnonzero(~(np.isfinite(open_time) & np.isfinite(close_time)))[0])
        raise _file_error(path, "finite", "open_time/close_time missing", line=bad + 1 + int(header))
    divisor = _detect_unit(path, open_time, close_time, timeframe)
    frame = pd.DataFrame({"timestamp": (open_time.astype(np.int64) // divisor)})
    for column in CANDLE_COLUMNS[1:]:
        frame[column] = raw[column].to_numpy(dtype=np.float64)
    return frame


def _read_project_csv(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path)
    raw = raw.rename(columns={"timestamp_ms": "timestamp"})
    if list(raw.columns) != list(CANDLE_COLUMNS):
        raise _file_error(path, "columns", f"expected header timestamp_ms,open,high,low,close,volume, got {list(raw.columns)}")
    if not pd.api.types.is_integer_dtype(raw["timestamp"].dtype):
        raise _file_error(path, "dtype", f"timestamp_ms must hold integers, got {raw['timestamp'].dtype}")
    for column in CANDLE_COLUMNS[1:]:
        if not pd.api.types.is_numeric_dtype(raw[column].dtype):
            bad = pd.to_numeric(raw[column], errors="coerce").isna() & raw[column].notna()
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2 if bad.any() else None
            raise _file_error(path, "dtype", f"column {column} holds non-numeric values", line=line)
    return raw.astype({"timestamp": np.int64, **{c: np.float64 for c in CANDLE_COLUMNS[1:]}})


def _sniff_csv(path: Path) -> tuple[str, bool]:
    """('project' | 'archive', has_header) from the first line of a CSV."""
    with open(path, encoding="utf-8") as handle:
        first = handle.readline().strip()
    if not first:
        raise _file_error(path, "columns", "file is empty")
    cells = first.split(",")
    has_header = not re.fullmatch(r"-?[0-9.eE+]+", cells[0].strip())
    if has_header and cells[0].strip() in ("timestamp_ms", "timestamp"):
        return "project", True
    if len(cells) == 12:
        return "archive", has_header
    raise _file_error(path, "columns", f"unrecognised CSV layout: first line {first[:80]!r}")


def read_candle_file(path: str | os.PathLike, symbol: str | None = None, timeframe: str | None = None) -> pd.DataFrame:
    """Read and validate one candle file; ``symbol``/``timeframe`` default to what the file name says."""
    path = Path(path)
    if not path.is_file():
        raise MarketDataError(f"candle file not found: {path}")
    parsed = parse_file_name(path)
    if timeframe is None:
        if parsed is None:
            raise ValueError(f"cannot tell the timeframe of {path.name}: pass timeframe= or name it like BTCUSDT_1h.csv")
        timeframe = parsed[1]
    symbol = symbol or (parsed[0] if parsed else path.stem)
    if path.suffix == ".parquet":
        frame = pq.read_table(path).to_pandas()
        frame = frame.rename(columns={"timestamp_ms": "timestamp"})
        line_offset = 0
    else:
        kind, header = _sniff_csv(path)
        frame = _read_project_csv(path) if kind == "project" else _read_archive_csv(path, header, timeframe)
        line_offset = 1 + int(header)  # row 0 is on line 1 (no header) or 2 (header)
    try:
        validate_candles(frame, timeframe)
    except CandleValidationError as err:
        line = None if err.row is None else err.row + line_offset
        raise CandleFileError(err.rule, err.detail, row=err.row, timestamp=err.timestamp, count=err.count,
                              location=f"{path}" + (f", line {line}" if line else "")) from None
    return with_meta(frame.reset_index(drop=True), symbol, timeframe)


def _merge(frames: list[pd.DataFrame], symbol: str, timeframe: str) -> pd.DataFrame:
    """Concatenate files of one market: identical overlapping candles (daily + monthly archives) collapse to one;
    conflicting values for the same open time are an error, not a silent choice."""
    merged = pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="stable")
    dup_ts = merged["timestamp"].duplicated(keep=False)
    if dup_ts.any():
        dups = merged[dup_ts]
        conflicting = dups.groupby("timestamp").nunique().gt(1).any(axis=1)
        if conflicting.any():
            ts = int(conflicting[conflicting].index[0])
            raise CandleValidationError("unique", f"files of {symbol} {timeframe} disagree on the candle at t={ts}",
                                        timestamp=ts, count=int(conflicting.sum()))
        merged = merged.drop_duplicates("timestamp")
    return with_meta(merged.reset_index(drop=True), symbol, timeframe)


@dataclass
class FilesSource:
    """Market source over a directory of candle files (searched recursively).

    Files for ``BTC/USDT`` at ``1h`` are those whose name starts with ``BTCUSDT_1h`` or ``BTCUSDT-1h`` (.csv or
    .parquet). Loaded markets are cached in memory and reloaded when a file changes (size or mtime).
    """

    directory: str
    name: str = "files"

    def __post_init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[tuple, pd.DataFrame]] = {}

    def files_for(self, symbol: str, timeframe: str) -> list[Path]:
        root = Path(self.directory)
        if not root.is_dir():
            raise MarketDataError(f"candle directory not found: {root} (set FIN_IA_DATA to a folder of candle files)")
        slug = symbol_slug(symbol)
        return sorted(
            p for p in root.rglob("*")
            if p.suffix in (".csv", ".parquet") and parse_file_name(p) == (slug, timeframe)
        )

    def load(self, symbol: str, timeframe: str) -> pd.DataFrame:
        """Every candle of the market the directory holds, validated."""
        timeframe_ms(timeframe)
        paths = self.files_for(symbol, timeframe)
        if not paths:
            raise MarketDataError(
                f"no candle files for {symbol} {timeframe} in {self.directory} "
                f"(expected names like {symbol_slug(symbol)}_{timeframe}.csv or {symbol_slug(symbol)}-{timeframe}-2024-01.csv)"
            )
        stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
        cached = self._cache.get((symbol, timeframe))
        if cached is None or cached[0] != stamp:
            frames = [read_candle_file(p, symbol, timeframe) for p in paths]
            self._cache[(symbol, timeframe)] = (stamp, _merge(frames, symbol, timeframe))
        return self._cache[(symbol, timeframe)][1]

    def fetch(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        frame = self.load(symbol, timeframe)
        ts = frame["timestamp"].to_numpy()
        lo, hi = np.searchsorted(ts, start_ms, "left"), np.searchsorted(ts, end_ms, "left")
        return with_meta(frame.iloc[lo:hi].reset_index(drop=True), symbol, timeframe)
