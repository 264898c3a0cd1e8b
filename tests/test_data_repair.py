"""Re-materializing a partition whose stored file is corrupt, foreign or unreadable repairs it from the source (with a
warning) instead of keeping or relabelling it; a good stored day is still refreshed incrementally, and bad data never
replaces a file."""

from __future__ import annotations

import logging

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fin_ia_models.data.refresh import day_bounds_ms, load_stored_day, refresh_day, refresh_stored_day
from fin_ia_models.data.schema import with_meta
from fin_ia_models.data.sources.base import MarketDataError
from fin_ia_models.data.storage import read_candles_parquet, write_candles_parquet
from fin_ia_models.data.validation import CandleValidationError
from tests.conftest import make_candles

DAY = "2024-01-01"
H = 3_600_000
END = day_bounds_ms(DAY)[1]


class DaySource:
    """The source's truth for BTC/USDT on DAY; records what it was asked; can be made to fail."""

    name = "day"

    def __init__(self, frame: pd.DataFrame, error: Exception | None = None):
        self.frame, self.error, self.calls = frame, error, []

    def fetch(self, symbol, timeframe, start_ms, end_ms):
        self.calls.append((symbol, start_ms, end_ms))
        if self.error is not None:
            raise self.error
        part = self.frame[(self.frame["timestamp"] >= start_ms) & (self.frame["timestamp"] < end_ms)]
        return with_meta(part.reset_index(drop=True), symbol, timeframe)


def truth() -> pd.DataFrame:
    return with_meta(make_candles(24), "BTC/USDT", "1h")


@pytest.fixture
def place(tmp_path):
    return tmp_path / "BTCUSDT" / "1h" / f"{DAY}.parquet"


def flip_a_value(path):
    table = pq.read_table(path)
    volume = table.column("volume").to_numpy().copy()
    volume[3] += 0.5
    pq.write_table(table.set_column(5, "volume", pa.array(volume)), path)


def store_eth(path):
    write_candles_parquet(with_meta(make_candles(12, seed=7), "ETH/USDT", "1h"), path, day=DAY)


def truncate(path):
    path.write_bytes(path.read_bytes()[:200])


@pytest.mark.parametrize(
    "damage, reason",
    [(flip_a_value, "content hash mismatch"), (store_eth, "symbol mismatch"), (truncate, "unreadable parquet")],
    ids=["bit_flip", "foreign_eth_file", "truncated"],
)
def test_a_corrupt_stored_day_is_refetched_whole_and_repaired(place, caplog, damage, reason):
    write_candles_parquet(truth().iloc[:12].reset_index(drop=True), place, day=DAY)
    damage(place)
    source = DaySource(truth())
    with caplog.at_level(logging.WARNING, logger="fin_ia.data.refresh"):
        result = refresh_stored_day(source, "BTC/USDT", "1h", DAY, place, now_ms=END)
    assert result.repaired is not None and reason in result.repaired and str(place) in result.repaired
    assert reason in caplog.text and "fetching the day again" in caplog.text
    assert source.calls == [("BTC/USDT", day_bounds_ms(DAY)[0], END)]  # the whole day, not "after the last stored"
    pd.testing.assert_frame_equal(result.frame, truth())
    assert result.frame.attrs["symbol"] == "BTC/USDT"
    write_candles_parquet(result.frame, place, day=DAY)  # what the IO manager does next
    pd.testing.assert_frame_equal(read_candles_parquet(place, "BTC/USDT", "1h", DAY), truth())


def test_a_good_stored_day_is_refreshed_incrementally_without_repair(place):
    write_candles_parquet(truth().iloc[:12].reset_index(drop=True), place, day=DAY)
    source = DaySource(truth())
    result = refresh_stored_day(source, "BTC/USDT", "1h", DAY, place, now_ms=END)
    assert result.repaired is None and result.added == 12
    assert source.calls == [("BTC/USDT", day_bounds_ms(DAY)[0] + 12 * H, END)]
    absent = load_stored_day(place.parent / "absent.parquet", "BTC/USDT", "1h", DAY)
    assert absent.frame is None and absent.problem is None


def test_a_failing_source_leaves_the_corrupt_file_for_the_next_attempt(place):
    """Repair needs the source: if it fails, nothing is written and the error is the source's (retryable) one."""
    write_candles_parquet(truth(), place, day=DAY)
    truncate(place)
    before = place.read_bytes()
    with pytest.raises(MarketDataError):
        refresh_stored_day(DaySource(truth(), MarketDataError("exchange down")), "BTC/USDT", "1h", DAY, place, END)
    assert place.read_bytes() == before


def test_bad_source_data_never_replaces_the_stored_file(place):
    write_candles_parquet(truth(), place, day=DAY)
    flip_a_value(place)
    before = place.read_bytes()
    bad = truth()
    bad.loc[5, "high"] = 1e308
    with pytest.raises(CandleValidationError, match=r"\[price_range\]"):
        result = refresh_stored_day(DaySource(bad), "BTC/USDT", "1h", DAY, place, END)
        write_candles_parquet(result.frame, place, day=DAY)  # never reached
    assert place.read_bytes() == before


def test_refresh_day_refuses_to_relabel_a_foreign_stored_frame():
    """A caller that hands in another market's frame (read without expectations) gets an error, not a relabel."""
    eth = with_meta(make_candles(12), "ETH/USDT", "1h")
    with pytest.raises(ValueError, match="stored frame holds symbol 'ETH/USDT' but the partition being refreshed is 'BTC/USDT'"):
        refresh_day(DaySource(truth()), "BTC/USDT", "1h", DAY, eth, now_ms=END)
    next_day = with_meta(make_candles(12, start_ms=END), "BTC/USDT", "1h")
    with pytest.raises(ValueError, match="outside the day"):
        refresh_day(DaySource(truth()), "BTC/USDT", "1h", DAY, next_day, now_ms=END)
