"""Atomic parquet storage and the incremental day refresh."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from fin_ia_models.data.refresh import day_bounds_ms, refresh_day
from fin_ia_models.data.schema import with_meta
from fin_ia_models.data.storage import read_candles_parquet, write_candles_parquet
from fin_ia_models.data.validation import CandleValidationError
from tests.conftest import make_candles

DAY = "2024-01-01"
H = 3_600_000


class CountingSource:
    """A source over a fixed frame that records every range it was asked for."""

    name = "counting"

    def __init__(self, frame: pd.DataFrame):
        self.frame, self.calls = frame, []

    def fetch(self, symbol, timeframe, start_ms, end_ms):
        self.calls.append((start_ms, end_ms))
        part = self.frame[(self.frame["timestamp"] >= start_ms) & (self.frame["timestamp"] < end_ms)]
        return with_meta(part.reset_index(drop=True), symbol, timeframe)


def test_round_trip_keeps_values_types_and_meta(tmp_path):
    frame = make_candles(24)
    path = tmp_path / "a" / "b.parquet"
    report = write_candles_parquet(frame, path)
    back = read_candles_parquet(path)
    pd.testing.assert_frame_equal(back, frame)
    assert back.attrs == {"symbol": "TEST/USDT", "timeframe": "1h"} and report.rows == 24


def test_bad_frame_never_replaces_a_good_file(tmp_path):
    path = tmp_path / "day.parquet"
    write_candles_parquet(make_candles(24), path)
    before = path.read_bytes()
    bad = make_candles(24)
    bad.loc[3, "high"] = 0.001
    with pytest.raises(CandleValidationError, match="high_bound"):
        write_candles_parquet(bad, path)
    assert path.read_bytes() == before


def test_crash_during_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "day.parquet"
    write_candles_parquet(make_candles(24), path)
    before = path.read_bytes()

    def torn_write(table, where, **kwargs):
        where.write(b"PAR1 half a file")  # the atomic writer hands pyarrow an open temporary file
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", torn_write)
    with pytest.raises(OSError, match="disk full"):
        write_candles_parquet(make_candles(30), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["day.parquet"]


def test_frame_without_meta_is_refused(tmp_path):
    frame = make_candles(3)
    frame.attrs.clear()
    with pytest.raises(ValueError, match="attrs"):
        write_candles_parquet(frame, tmp_path / "x.parquet")


def test_refresh_fetches_only_after_the_last_stored_candle():
    full = make_candles(24)
    source = CountingSource(full)
    start, end = day_bounds_ms(DAY)
    first = refresh_day(source, "TEST/USDT", "1h", DAY, None, now_ms=start + 10 * H + 5)
    assert len(first.frame) == 10 and source.calls[-1] == (start, start + 10 * H)  # the 10:00 candle is still open
    second = refresh_day(source, "TEST/USDT", "1h", DAY, first.frame, now_ms=end + 5)
    assert source.calls[-1] == (start + 10 * H, end)
    assert second.added == 14 and len(second.frame) == 24
    pd.testing.assert_frame_equal(second.frame, full)
    calls = len(source.calls)
    again = refresh_day(source, "TEST/USDT", "1h", DAY, second.frame, now_ms=end + 5)
    assert len(source.calls) == calls and again.added == 0  # a complete day asks nothing


def test_refresh_keeps_stored_values_and_counts_conflicts():
    full = make_candles(24)
    stored = full.iloc[:12].copy()
    revised = full.copy()
    revised.loc[11, "volume"] += 1.0  # the exchange now reports a different volume for a stored candle

    class Overlapping(CountingSource):
        def fetch(self, symbol, timeframe, start_ms, end_ms):
            return super().fetch(symbol, timeframe, start_ms - 2 * H, end_ms)  # returns two stored candles again

    result = refresh_day(Overlapping(revised), "TEST/USDT", "1h", DAY, with_meta(stored, "TEST/USDT", "1h"),
                         now_ms=day_bounds_ms(DAY)[1])
    assert result.conflicts == 1 and len(result.frame) == 24
    assert result.frame.loc[11, "volume"] == full.loc[11, "volume"]


def test_day_bounds():
    assert day_bounds_ms("2024-01-01") == (1_704_067_200_000, 1_704_153_600_000)
