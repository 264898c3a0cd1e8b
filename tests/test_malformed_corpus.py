"""A corpus of malformed candle inputs: each gets its named error, and stored candles are left untouched."""

from __future__ import annotations

import gzip
import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from fin_ia_models.data.refresh import refresh_day
from fin_ia_models.data.sources.files import FilesSource, parse_file_name, read_candle_file
from fin_ia_models.data.storage import write_candles_parquet
from fin_ia_models.data.validation import CandleValidationError
from tests.conftest import make_candles
from tests.test_files_source import to_archive

DAY = "2024-01-01"  # make_candles starts at 2024-01-01 00:00 UTC
H = 3_600_000
D = 24 * H


def project_csv(frame: pd.DataFrame) -> str:
    return frame.rename(columns={"timestamp": "timestamp_ms"}).to_csv(index=False)


def edit(fn):
    """A project CSV of 48 valid candles after ``fn`` edited the frame (or its CSV text)."""
    def build() -> tuple[str, str | bytes]:
        frame = make_candles(48)
        out = fn(frame)
        return ("TESTUSDT_1h.csv", out if isinstance(out, (str, bytes)) else project_csv(out))
    return build


def setv(row, column, value):
    def fn(frame):
        frame[column] = frame[column].astype(object) if isinstance(value, str) else frame[column]
        frame.loc[row, column] = value
        return frame
    return fn


def archive(fn, unit=1, name="TESTUSDT-1h-2024-01.csv"):
    def build() -> tuple[str, str]:
        return (name, fn(to_archive(make_candles(48), H, unit)).to_csv(index=False, header=False))
    return build


def with_ts(fn):
    def inner(frame):
        frame["timestamp"] = fn(frame["timestamp"].to_numpy().copy())
        return frame
    return inner


def swap(i, j):
    def fn(ts):
        ts[[i, j]] = ts[[j, i]]
        return ts
    return fn


# (id, builder, expected rule, expected line in the file or None)
CORPUS = [
    ("missing_volume_column", edit(lambda f: f.drop(columns="volume")), "columns", None),
    ("extra_column", edit(lambda f: f.assign(trades=1)), "columns", None),
    ("columns_reordered", edit(lambda f: f[["timestamp", "close", "high", "low", "open", "volume"]]), "columns", None),
    ("empty_file", lambda: ("TESTUSDT_1h.csv", ""), "empty", None),
    ("unrecognised_header", lambda: ("TESTUSDT_1h.csv", "time,o,h,l,c,v\n1,2,3,4,5,6\n"), "columns", None),
    ("timestamp_with_fraction", edit(with_ts(lambda t: t + 0.5)), "dtype", None),
    ("timestamp_as_text", edit(lambda f: project_csv(f).replace(str(f["timestamp"][3]), "2024-01-01T03:00")), "dtype", None),
    ("price_as_text", edit(setv(10, "close", "abc")), "dtype", 12),
    ("volume_null_text", edit(setv(20, "volume", "null")), "finite", 22),  # pandas reads "null" as NaN
    ("timestamps_in_seconds", edit(with_ts(lambda t: t // 1000)), "timestamp_unit", 2),
    ("timestamps_in_microseconds", edit(with_ts(lambda t: t * 1000)), "timestamp_unit", 2),
    ("one_timestamp_in_seconds", edit(with_ts(lambda t: np.where(np.arange(t.size) == 7, t // 1000, t))), "timestamp_unit", 9),
    ("negative_timestamp", edit(with_ts(lambda t: np.where(np.arange(t.size) == 0, -t, t))), "timestamp_unit", 2),
    ("nan_open", edit(setv(5, "open", np.nan)), "finite", 7),
    ("inf_close", edit(setv(6, "close", np.inf)), "finite", 8),
    ("nan_volume", edit(setv(30, "volume", np.nan)), "finite", 32),
    ("truncated_row", edit(lambda f: project_csv(f).replace(project_csv(f).splitlines()[4], project_csv(f).splitlines()[4].rsplit(",", 2)[0])), "finite", 5),
    ("zero_price", edit(setv(9, "low", 0.0)), "positive_price", 11),
    ("negative_price", edit(setv(11, "open", -5.0)), "positive_price", 13),
    ("negative_volume", edit(setv(12, "volume", -0.1)), "nonnegative_volume", 14),
    ("low_above_open", edit(lambda f: f.assign(low=np.where(np.arange(48) == 13, f["open"] * 1.5, f["low"]))), "low_bound", 15),
    ("low_above_close_only", edit(lambda f: f.assign(low=np.where(np.arange(48) == 14, np.minimum(f["open"], f["close"]) * 1.0001, f["low"]))), "low_bound", 16),
    ("high_below_open", edit(lambda f: f.assign(high=np.where(np.arange(48) == 15, f["open"] * 0.5, f["high"]))), "high_bound", 17),
    ("high_below_close_only", edit(lambda f: f.assign(high=np.where(np.arange(48) == 16, np.maximum(f["open"], f["close"]) * 0.9999, f["high"]))), "high_bound", 18),
    ("rows_swapped", edit(with_ts(swap(20, 21))), "sorted", 23),
    ("rows_reversed", edit(lambda f: f.iloc[::-1].reset_index(drop=True)), "sorted", 3),
    ("duplicate_row", edit(lambda f: pd.concat([f.iloc[:10], f.iloc[9:]], ignore_index=True)), "unique", 12),
    ("duplicate_timestamp_other_values", edit(with_ts(lambda t: np.where(np.arange(t.size) == 25, t - H, t))), "unique", 27),
    ("off_grid_by_one_ms", edit(with_ts(lambda t: np.where(np.arange(t.size) == 30, t + 1, t))), "grid", 32),
    ("off_grid_half_hour", edit(with_ts(lambda t: t + H // 2)), "grid", 2),
    ("archive_eleven_columns", archive(lambda a: a.drop(columns="ignore")), "columns", None),
    ("archive_timeframe_mismatch", archive(lambda a: a.assign(close_time=a["open_time"] + 60_000 - 1)), "timeframe", None),
    ("archive_mixed_ms_and_us", archive(lambda a: a.assign(open_time=np.where(np.arange(48) < 24, a["open_time"] * 1000, a["open_time"]))), "timestamp_unit", None),
    ("archive_us_negative_volume", archive(lambda a: a.assign(volume=np.where(np.arange(48) == 3, -1.0, a["volume"])), unit=1000), "nonnegative_volume", 4),
    ("archive_missing_open_time", archive(lambda a: a.assign(open_time=np.where(np.arange(48) == 8, np.nan, a["open_time"]))), "finite", 9),
    ("daily_file_off_midnight", lambda: ("TESTUSDT_1d.csv", project_csv(make_candles(10, step_ms=86_400_000).assign(timestamp=lambda f: f["timestamp"] + H))), "grid", 2),
    # --- issue 16: values that pass every consistency rule but no market produces (plausibility.py) ---
    ("price_1e308", edit(setv(10, "high", 1e308)), "price_range", 12),
    ("price_below_min", edit(lambda f: f.assign(low=np.where(np.arange(48) == 11, 1e-20, f["low"]))), "price_range", 13),
    ("volume_1e308", edit(setv(11, "volume", 1e308)), "volume_range", 13),
    ("wick_4e9_to_4e-5", edit(lambda f: f.assign(high=np.where(np.arange(48) == 12, 4.2e9, f["high"]),
                                                 low=np.where(np.arange(48) == 12, 4.2e-5, f["low"]))), "wick_ratio", 14),
    ("prices_times_1000_from_row_20", edit(lambda f: f.assign(**{c: np.where(np.arange(48) >= 20, f[c] * 1000, f[c])
                                                                  for c in ("open", "high", "low", "close")})), "close_jump", 22),
    # --- issue 16: damaged text (csv_text.py) ---
    ("last_line_cut_mid_field", edit(lambda f: cut_last_volume(f)), "truncated", 49),
    ("last_line_without_newline", edit(lambda f: project_csv(f).rstrip("\n")), "truncated", 49),
    ("header_only", lambda: ("TESTUSDT_1h.csv", "timestamp_ms,open,high,low,close,volume\n"), "empty", 1),
    ("blank_lines_only", lambda: ("TESTUSDT_1h.csv", "\n\r\n  \n"), "empty", None),
    ("blank_first_line", edit(lambda f: "\n" + project_csv(f)), "blank_line", 1),
    ("blank_line_between_candles", edit(lambda f: project_csv(f).replace("\n", "\n\n", 10).replace("\n\n", "\n", 9)), "blank_line", 11),
    ("blank_crlf_line_between_candles", edit(lambda f: project_csv(f).replace("\n", "\r\n").replace("\r\n", "\r\n\r\n", 30).replace("\r\n\r\n", "\r\n", 29)), "blank_line", 31),
    ("archive_blank_line_between_candles", lambda: ("TESTUSDT-1h-2024-01.csv", to_archive(make_candles(48), H, 1).to_csv(index=False, header=False).replace("\n", "\n\n", 5).replace("\n\n", "\n", 4)), "blank_line", 6),
    ("gzip_file", lambda: ("TESTUSDT_1h.csv", gzip.compress(project_csv(make_candles(48)).encode(), mtime=0)), "encoding", None),
    ("zip_file", lambda: ("TESTUSDT_1h.csv", zipped(project_csv(make_candles(48)))), "encoding", None),
    ("utf16_file", lambda: ("TESTUSDT_1h.csv", project_csv(make_candles(48)).encode("utf-16")), "encoding", None),
    ("binary_garbage", lambda: ("TESTUSDT_1h.csv", bytes(np.random.default_rng(16).integers(0, 256, 4096, dtype=np.uint8))), "encoding", None),
    ("latin1_byte_in_row", edit(lambda f: latin1_at_line(f, 10)), "encoding", 10),
    ("row_with_extra_field", edit(lambda f: project_csv(f).replace("\n", ",7\n", 6).replace(",7\n", "\n", 5)), "columns", 6),
    ("archive_text_in_close", archive(lambda a: a.assign(close=np.where(np.arange(48) == 6, "abc", a["close"].astype(str)))), "dtype", 7),
    # --- issue 16: candles of another timeframe than the file declares ---
    ("daily_candles_in_1h_file", lambda: ("TESTUSDT_1h.csv", project_csv(make_candles(10, step_ms=D))), "timeframe", None),
    ("hourly_candles_in_1d_file", lambda: ("TESTUSDT_1d.csv", project_csv(make_candles(48))), "timeframe", None),
    ("archive_daily_candles_named_1h", archive(lambda a: a.assign(close_time=a["open_time"] + D - 1)), "timeframe", None),
]


def cut_last_volume(frame: pd.DataFrame) -> str:
    """The issue's case: the last line ``...,1080.2`` cut after its first digit (no newline), read as 1.0."""
    frame.loc[47, "volume"] = 1080.2
    text = project_csv(frame)
    assert text.endswith(",1080.2\n")
    return text[: -len("080.2\n")]


def zipped(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive_file:
        archive_file.writestr("TESTUSDT-1h-2024-01.csv", text)
    return buffer.getvalue()


def latin1_at_line(frame: pd.DataFrame, line: int) -> bytes:
    lines = project_csv(frame).split("\n")
    lines[line - 1] = lines[line - 1] + "é"  # a stray latin-1 byte (0xe9) at the end of the line
    return "\n".join(lines).encode("latin-1")


def write_case(tmp_path, builder):
    name, content = builder()
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))  # never the platform's newline or encoding
    return path


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 55
    assert len({case[0] for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case_id, builder, rule, line", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_input_gets_its_named_error(tmp_path, case_id, builder, rule, line):
    path = write_case(tmp_path, builder)
    with pytest.raises(CandleValidationError) as info:
        read_candle_file(path, "TEST/USDT")
    assert info.value.rule == rule, str(info.value)
    message = str(info.value)
    assert str(path) in message
    if line is not None:
        assert f"line {line}" in message, message


def test_parquet_with_wrong_schema_is_rejected(tmp_path):
    frame = make_candles(5)
    frame.drop(columns="volume").to_parquet(tmp_path / "TESTUSDT_1h.parquet", index=False)
    with pytest.raises(CandleValidationError) as info:
        read_candle_file(tmp_path / "TESTUSDT_1h.parquet")
    assert info.value.rule == "columns"
    frame.astype({"timestamp": float}).to_parquet(tmp_path / "TESTUSDT_1h.parquet", index=False)
    with pytest.raises(CandleValidationError) as info:
        read_candle_file(tmp_path / "TESTUSDT_1h.parquet")
    assert info.value.rule == "dtype"


def test_conflicting_files_for_one_market_are_rejected(tmp_path):
    frame = make_candles(48)
    to_archive(frame, H, 1).to_csv(tmp_path / "TESTUSDT-1h-2024-01.csv", index=False, header=False)
    other = frame.iloc[24:48].copy()
    other["volume"] = other["volume"] + 1.0
    to_archive(other, H, 1).to_csv(tmp_path / "TESTUSDT-1h-2024-01-02.csv", index=False, header=False)
    with pytest.raises(CandleValidationError, match="disagree") as info:
        FilesSource(str(tmp_path)).load("TEST/USDT", "1h")
    assert info.value.rule == "unique"


@pytest.mark.parametrize("case_id, builder, rule, line", CORPUS, ids=[c[0] for c in CORPUS])
def test_stored_day_is_unchanged_by_malformed_input(tmp_path, case_id, builder, rule, line):
    """A day stored up to noon is refreshed from a malformed file: the refresh fails, the stored bytes stay."""
    stored_path = tmp_path / "store" / "TESTUSDT" / "1h" / f"{DAY}.parquet"
    stored = make_candles(12)
    write_candles_parquet(stored, stored_path)
    before = stored_path.read_bytes()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_case(data_dir, builder)
    timeframe = parse_file_name(builder()[0])[1]
    with pytest.raises(CandleValidationError):
        result = refresh_day(FilesSource(str(data_dir)), "TEST/USDT", timeframe, DAY,
                             stored if timeframe == "1h" else None, now_ms=1_800_000_000_000)
        write_candles_parquet(result.frame, stored_path)  # never reached
    assert stored_path.read_bytes() == before
    assert sorted(p.name for p in stored_path.parent.iterdir()) == [stored_path.name]  # no temp file left behind
