"""Files source on the real Binance candles and on Binance archive layouts (ms and µs open times)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from fin_ia_models.data.sources.base import MarketDataError, MarketNotFoundError, MarketSource
from fin_ia_models.data.sources.files import CandleFileError, FilesSource, parse_file_name, read_candle_file
from fin_ia_models.data.validation import validate_candles
from tests.conftest import make_candles

# The table in ../shared/data/binance/README.md: rows, missing candles, gap events, sha256 prefix.
README_TABLE = {
    "BNBUSDT_1h.csv": (37516, 20, 10, "99e541ff1dcb962b"),
    "BTCUSDT_1d.csv": (1564, 0, 0, "019d9cfdb7196b59"),
    "BTCUSDT_1h.csv": (64524, 128, 28, "3b8cd8250c947e21"),
    "ETHUSDT_1d.csv": (1564, 0, 0, "ee77c84a3504926f"),
    "ETHUSDT_1h.csv": (37516, 20, 10, "351bd64a8c9da165"),
    "SOLUSDT_1h.csv": (37516, 20, 10, "f8bf99ea2972d011"),
}


@pytest.mark.parametrize("name", sorted(README_TABLE))
def test_real_files_match_the_readme_table(binance_dir, name):
    rows, missing, gap_events, sha = README_TABLE[name]
    path = binance_dir / name
    assert hashlib.sha256(path.read_bytes()).hexdigest().startswith(sha), "the shared file changed"
    frame = read_candle_file(path)
    report = validate_candles(frame, frame.attrs["timeframe"])
    assert report.rows == rows
    assert report.missing_candles == missing
    assert len(report.gaps) == gap_events


def test_files_source_fetch_slices_a_day(binance_dir):
    source = FilesSource(str(binance_dir))
    assert isinstance(source, MarketSource)
    day = source.fetch("BTC/USDT", "1h", 1_704_067_200_000, 1_704_153_600_000)  # 2024-01-01
    assert len(day) == 24 and day["timestamp"].iloc[0] == 1_704_067_200_000
    assert day.attrs == {"symbol": "BTC/USDT", "timeframe": "1h"}
    assert source.fetch("BTC/USDT", "1h", 0, 1_000).empty


def test_missing_market_and_directory_give_clear_non_retryable_errors(tmp_path, binance_dir):
    """Absent markets, folders and files are permanent: ``MarketNotFoundError``, which is deliberately not a
    ``MarketDataError`` (the error the pipeline retries as transient)."""
    with pytest.raises(MarketNotFoundError, match="no candle files for DOGE/USDT 1h") as info:
        FilesSource(str(binance_dir)).fetch("DOGE/USDT", "1h", 0, 1)
    assert not isinstance(info.value, MarketDataError)
    with pytest.raises(MarketNotFoundError, match="candle directory not found"):
        FilesSource(str(tmp_path / "nope")).fetch("BTC/USDT", "1h", 0, 1)
    with pytest.raises(MarketNotFoundError, match="no such candle file: .*BTCUSDT_1h.csv"):
        read_candle_file(tmp_path / "BTCUSDT_1h.csv")


def to_archive(frame: pd.DataFrame, step_ms: int, unit: int) -> pd.DataFrame:
    """Binance kline archive layout; ``unit`` 1 for ms, 1000 for µs."""
    open_time = frame["timestamp"].to_numpy() * unit
    return pd.DataFrame(
        {
            "open_time": open_time, "open": frame["open"], "high": frame["high"], "low": frame["low"],
            "close": frame["close"], "volume": frame["volume"], "close_time": open_time + step_ms * unit - 1,
            "quote_volume": frame["volume"] * frame["close"], "trades": 10, "taker_base": frame["volume"] / 2,
            "taker_quote": frame["volume"] * frame["close"] / 2, "ignore": 0,
        }
    )


@pytest.mark.parametrize("unit", [1, 1000], ids=["ms", "us"])
@pytest.mark.parametrize("header", [False, True])
def test_archive_csv_unit_is_detected_from_the_data(tmp_path, unit, header):
    frame = make_candles(30)
    path = tmp_path / "TESTUSDT-1h-2024-01.csv"
    to_archive(frame, 3_600_000, unit).to_csv(path, index=False, header=header)
    loaded = read_candle_file(path, "TEST/USDT")
    assert loaded["timestamp"].tolist() == frame["timestamp"].tolist()
    np.testing.assert_array_equal(loaded["close"].to_numpy(), frame["close"].to_numpy())


def test_archive_unit_is_not_guessed_from_the_file_date(tmp_path):
    # An old-dated file name holding µs data is still read as µs (and a new-dated one holding ms as ms).
    frame = make_candles(5)
    to_archive(frame, 3_600_000, 1000).to_csv(tmp_path / "TESTUSDT-1h-2019-01-01.csv", index=False, header=False)
    to_archive(frame, 3_600_000, 1).to_csv(tmp_path / "TESTUSDT-1h-2026-01-01.csv", index=False, header=False)
    for name in ("TESTUSDT-1h-2019-01-01.csv", "TESTUSDT-1h-2026-01-01.csv"):
        assert read_candle_file(tmp_path / name)["timestamp"].tolist() == frame["timestamp"].tolist()


def test_daily_and_monthly_archives_overlap_without_duplicates(tmp_path):
    frame = make_candles(72)
    to_archive(frame, 3_600_000, 1).to_csv(tmp_path / "TESTUSDT-1h-2024-01.csv", index=False, header=False)
    to_archive(frame.iloc[24:48], 3_600_000, 1000).to_csv(tmp_path / "TESTUSDT-1h-2024-01-02.csv", index=False, header=False)
    merged = FilesSource(str(tmp_path)).load("TEST/USDT", "1h")
    assert merged["timestamp"].tolist() == frame["timestamp"].tolist()


def test_parquet_files_are_read(tmp_path):
    frame = make_candles(10)
    frame.to_parquet(tmp_path / "TESTUSDT_1h.parquet", index=False)
    assert read_candle_file(tmp_path / "TESTUSDT_1h.parquet")["close"].tolist() == frame["close"].tolist()


def test_source_reloads_a_changed_file(tmp_path):
    path = tmp_path / "TESTUSDT_1h.csv"
    make_candles(10).rename(columns={"timestamp": "timestamp_ms"}).to_csv(path, index=False)
    source = FilesSource(str(tmp_path))
    assert len(source.load("TEST/USDT", "1h")) == 10
    make_candles(20).rename(columns={"timestamp": "timestamp_ms"}).to_csv(path, index=False)
    assert len(source.load("TEST/USDT", "1h")) == 20


def test_file_names_are_parsed():
    assert parse_file_name("BTCUSDT_1h.csv") == ("BTCUSDT", "1h")
    assert parse_file_name("ETHUSDT-15m-2024-01-05.csv") == ("ETHUSDT", "15m")
    assert parse_file_name("notes.csv") is None


def test_unknown_csv_layout_is_rejected(tmp_path):
    path = tmp_path / "TESTUSDT_1h.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(CandleFileError, match="unrecognised CSV layout"):
        read_candle_file(path)
