"""Candles from local files: the project's CSV/parquet format and Binance's public kline archives.

Formats, detected from the file itself (never from its name or date):
- project CSV (``../shared/data/binance/*.csv``): header ``timestamp_ms,open,high,low,close,volume`` (``timestamp``
  is accepted as the first column name too), open time in ms;
- parquet with the candle columns (what this project stores);
- Binance archive CSV (data.binance.vision ``klines``): 12 columns ``open_time, open, high, low, close, volume,
  close_time, quote_volume, trades, taker_base, taker_quote, ignore``, usually without a header. Spot archives
  switched from ms to µs open times in 2025, so the unit is detected per file from the magnitude of the open time AND
  confirmed by ``close_time - open_time`` (one candle minus one tick), which must agree.

Every file is validated on load; an error names the file, the line and the rule. Nothing is repaired silently:
raw-byte defects (encoding, a byte-order mark, blank or cut lines) are checked first (``csv_text.py``), then the
layout, then every candle rule including plausibility (``limits``), then that the candles' spacing is the declared
timeframe (daily candles in a ``_1h`` file are an error, not "gaps"). A parquet file written by this project's
storage is also checked against the content hash it records. A file or market that does not exist raises
``MarketNotFoundError`` (permanent; not a ``MarketDataError``, so nothing retries it).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fin_ia_models.data.plausibility import PlausibilityLimits
from fin_ia_models.data.schema import CANDLE_COLUMNS, TIMEFRAME_MS, symbol_slug, timeframe_ms, with_meta
from fin_ia_models.data.sources.base import MarketNotFoundError
from fin_ia_models.data.sources.csv_text import CandleFileError, check_csv_bytes, file_error
from fin_ia_models.data.storage import HASH_KEY, candle_content_hash
from fin_ia_models.data.validation import (
    MAX_TIMESTAMP_MS,
    CandleValidationError,
    check_declared_timeframe,
    validate_candles,
)

__all__ = ["CandleFileError", "FilesSource", "parse_file_name", "read_candle_file"]

ARCHIVE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume",
    "close_time", "quote_volume", "trades", "taker_base", "taker_quote", "ignore",
)
# BTCUSDT_1h.csv, BTCUSDT-1h-2024-01.csv, BTCUSDT-1h-2024-01-05.csv, ...; group 1 = market id, group 2 = timeframe
_NAME = re.compile(r"^([A-Z0-9]+)[_-](%s)(?:[_-].*)?$" % "|".join(sorted(TIMEFRAME_MS, key=len, reverse=True)))
_TIMEFRAME_OF_MS = {v: k for k, v in TIMEFRAME_MS.items()}


def parse_file_name(path: str | os.PathLike) -> tuple[str, str] | None:
    """``(market id, timeframe)`` encoded in a candle file's name, or None if the name does not follow it."""
    match = _NAME.match(Path(path).name.split(".")[0])
    return (match.group(1), match.group(2)) if match else None


def _detect_unit(
    path: Path, open_time: np.ndarray, close_time: np.ndarray, timeframe: str | None, declared_by: str
) -> int:
    """Divisor turning archive times into ms: 1 for ms files, 1000 for µs files. Raises if the evidence disagrees."""
    if open_time.size == 0:
        return 1
    by_magnitude = 1000 if open_time.max() >= MAX_TIMESTAMP_MS else 1
    if by_magnitude == 1000 and open_time.min() < MAX_TIMESTAMP_MS:
        raise file_error(path, "timestamp_unit", "open times mix milliseconds and microseconds")
    span = int(np.median(close_time - open_time)) + 1  # close_time is the last tick of the candle
    if timeframe is not None:
        expected = {1: timeframe_ms(timeframe), 1000: timeframe_ms(timeframe) * 1000}[by_magnitude]
        inferred = _TIMEFRAME_OF_MS.get(span // by_magnitude) if span % by_magnitude == 0 else None
        if span != expected and inferred is not None:
            raise file_error(
                path, "timeframe",
                f"close_time - open_time spans one {inferred} candle (inferred timeframe {inferred}), but "
                f"{declared_by} declares {timeframe}: wrong file or wrong timeframe",
            )
        if span != expected:
            raise file_error(
                path, "timestamp_unit",
                f"close_time - open_time = {span - 1} does not match one {timeframe} candle in "
                f"{'µs' if by_magnitude == 1000 else 'ms'} ({expected - 1}); unit or timeframe is wrong",
            )
    return by_magnitude


def _first_non_numeric(path: Path, raw: pd.DataFrame, columns, line_offset: int) -> None:
    """Raise a ``dtype`` error naming the first line where one of ``columns`` holds text instead of a number."""
    for column in columns:
        if not pd.api.types.is_numeric_dtype(raw[column].dtype):
            bad = pd.to_numeric(raw[column], errors="coerce").isna() & raw[column].notna()
            line = int(np.flatnonzero(bad.to_numpy())[0]) + line_offset if bad.any() else None
            raise file_error(path, "dtype", f"column {column} holds non-numeric values", line=line)


def _blank_line(path: Path, raw: pd.DataFrame, line_offset: int) -> None:
    """Raise ``blank_line`` for the first all-empty row (a blank line; trailing ones were dropped before parsing)."""
    blank = raw.isna().all(axis=1).to_numpy()
    if blank.any():
        raise file_error(path, "blank_line", "blank line between candles", int(np.flatnonzero(blank)[0]) + line_offset)


def _parse(path: Path, data: bytes, **options) -> pd.DataFrame:
    """``pandas.read_csv`` whose tokenizer errors (a row with too many fields) name the file. Blank lines are kept
    as all-empty rows (``skip_blank_lines=False``), so that line numbers stay true and ``_blank_line`` can report
    them; skipping them would hide a damaged file and shift every later line number."""
    try:
        return pd.read_csv(io.BytesIO(data), skip_blank_lines=False, **options)
    except pd.errors.ParserError as err:
        line = re.search(r"line (\d+)", str(err))  # the tokenizer counts lines from 1, header included
        raise file_error(path, "columns", f"rows do not have one field per column ({str(err).strip()})",
                         int(line.group(1)) if line else None) from None


def _read_archive_csv(path: Path, data: bytes, header: bool, timeframe: str, declared_by: str) -> pd.DataFrame:
    options = dict(header=0 if header else None, names=ARCHIVE_COLUMNS)
    try:
        raw = _parse(path, data, dtype=np.float64, **options)
    except CandleFileError:
        raise
    except ValueError:  # text in a numeric column: parse untyped to find the line
        _first_non_numeric(path, _parse(path, data, **options), ARCHIVE_COLUMNS, 1 + int(header))
        raise file_error(path, "dtype", "a numeric column holds non-numeric values") from None
    open_time = raw["open_time"].to_numpy()
    close_time = raw["close_time"].to_numpy()
    if not (np.isfinite(open_time).all() and np.isfinite(close_time).all()):
        _blank_line(path, raw, 1 + int(header))
        bad = int(np.flatnonzero(~(np.isfinite(open_time) & np.isfinite(close_time)))[0])
        raise file_error(path, "finite", "open_time/close_time missing", line=bad + 1 + int(header))
    divisor = _detect_unit(path, open_time, close_time, timeframe, declared_by)
    frame = pd.DataFrame({"timestamp": (open_time.astype(np.int64) // divisor)})
    for column in CANDLE_COLUMNS[1:]:
        frame[column] = raw[column].to_numpy(dtype=np.float64)
    return frame


def _read_project_csv(path: Path, data: bytes) -> pd.DataFrame:
    raw = _parse(path, data)
    raw = raw.rename(columns={"timestamp_ms": "timestamp"})
    if list(raw.columns) != list(CANDLE_COLUMNS):
        raise file_error(path, "columns", f"expected header timestamp_ms,open,high,low,close,volume, got {list(raw.columns)}")
    if not pd.api.types.is_integer_dtype(raw["timestamp"].dtype):  # a blank line also makes it float (NaN)
        _blank_line(path, raw, 2)
        raise file_error(path, "dtype", f"timestamp_ms must hold integers, got {raw['timestamp'].dtype}")
    _first_non_numeric(path, raw, CANDLE_COLUMNS[1:], 2)
    return raw.astype({"timestamp": np.int64, **{c: np.float64 for c in CANDLE_COLUMNS[1:]}})


def _sniff_csv(path: Path, data: bytes) -> tuple[str, bool]:
    """('project' | 'archive', has_header) from the first line of a CSV (already checked by ``check_csv_bytes``)."""
    end = data.find(b"\n")
    first = data[: end if end >= 0 else len(data)].decode("utf-8").strip()
    cells = first.split(",")
    has_header = not re.fullmatch(r"-?[0-9.eE+]+", cells[0].strip())
    if has_header and end == len(data) - 1:  # check_csv_bytes left one newline after the last non-blank line
        raise file_error(path, "empty", f"file has a header line ({first[:80]!r}) but no candles", line=1)
    if has_header and cells[0].strip() in ("timestamp_ms", "timestamp"):
        return "project", True
    if len(cells) == 12:
        return "archive", has_header
    raise file_error(path, "columns", f"unrecognised CSV layout: first line {first[:80]!r}")


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise file_error(path, "unreadable", f"unreadable parquet ({type(err).__name__}: {err})") from None
    frame = table.to_pandas().rename(columns={"timestamp_ms": "timestamp"})
    recorded = (table.schema.metadata or {}).get(HASH_KEY)
    if recorded is not None and list(frame.columns) == list(CANDLE_COLUMNS):
        if candle_content_hash(frame) != recorded.decode("utf-8", errors="replace"):
            raise file_error(path, "content_hash", "values do not match the content hash recorded when the file "
                              "was stored: it was altered or damaged since")
    return frame


def _validate(path: Path, frame: pd.DataFrame, timeframe: str, declared_by: str, line_offset: int, limits) -> None:
    """Every candle rule, then the declared timeframe; a ``grid`` failure whose cause is a wrong timeframe (hourly
    candles in a ``_1d`` file) is reported as ``timeframe``."""
    try:
        try:
            validate_candles(frame, timeframe, limits)
        except CandleValidationError as err:
            if err.rule == "grid":
                check_declared_timeframe(frame["timestamp"].to_numpy(), timeframe, declared_by)
            raise
        check_declared_timeframe(frame["timestamp"].to_numpy(), timeframe, declared_by)
    except CandleValidationError as err:
        line = None if err.row is None else err.row + line_offset
        raise CandleFileError(err.rule, err.detail, row=err.row, timestamp=err.timestamp, count=err.count,
                              location=f"{path}" + (f", line {line}" if line else "")) from None


def read_candle_file(
    path: str | os.PathLike,
    symbol: str | None = None,
    timeframe: str | None = None,
    limits: PlausibilityLimits | None = None,
) -> pd.DataFrame:
    """Read and validate one candle file; ``symbol``/``timeframe`` default to what the file name says."""
    path = Path(path)
    if not path.exists():
        raise MarketNotFoundError(f"no such candle file: {path}")
    if not path.is_file():
        raise file_error(path, "not_a_file", "is a directory or special file, not a candle file")
    parsed = parse_file_name(path)
    declared_by = "the timeframe argument" if timeframe is not None else f"the file name {path.name!r}"
    if timeframe is None:
        if parsed is None:
            raise ValueError(f"cannot tell the timeframe of {path.name}: pass timeframe= or name it like BTCUSDT_1h.csv")
        timeframe = parsed[1]
    symbol = symbol or (parsed[0] if parsed else path.stem)
    if path.suffix == ".parquet":
        frame = _read_parquet(path)
        line_offset = 0
    else:
        data = check_csv_bytes(path, path.read_bytes())
        kind, header = _sniff_csv(path, data)
        if kind == "project":
            frame = _read_project_csv(path, data)
        else:
            frame = _read_archive_csv(path, data, header, timeframe, declared_by)
        line_offset = 1 + int(header)  # row 0 is on line 1 (no header) or 2 (header)
    _validate(path, frame, timeframe, declared_by, line_offset, limits)
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
    limits: PlausibilityLimits | None = None  # plausibility limits for every file (None: DEFAULT_LIMITS)

    def __post_init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[tuple, pd.DataFrame]] = {}

    def files_for(self, symbol: str, timeframe: str) -> list[Path]:
        root = Path(self.directory)
        if not root.is_dir():
            raise MarketNotFoundError(
                f"candle directory not found: {root} (set FIN_IA_DATA to a folder of candle files)"
            )
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
            raise MarketNotFoundError(
                f"no candle files for {symbol} {timeframe} in {self.directory} "
                f"(expected names like {symbol_slug(symbol)}_{timeframe}.csv or {symbol_slug(symbol)}-{timeframe}-2024-01.csv)"
            )
        stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
        cached = self._cache.get((symbol, timeframe))
        if cached is None or cached[0] != stamp:
            frames = [read_candle_file(p, symbol, timeframe, self.limits) for p in paths]
            self._cache[(symbol, timeframe)] = (stamp, _merge(frames, symbol, timeframe))
        return self._cache[(symbol, timeframe)][1]

    def fetch(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        frame = self.load(symbol, timeframe)
        ts = frame["timestamp"].to_numpy()
        lo, hi = np.searchsorted(ts, start_ms, "left"), np.searchsorted(ts, end_ms, "left")
        return with_meta(frame.iloc[lo:hi].reset_index(drop=True), symbol, timeframe)
