"""Byte-level CSV handling (BOM, CRLF, trailing blank lines), plausibility limits (defaults, configuration, plumbing)
and timeframe inference."""

from __future__ import annotations

import codecs
import math

import numpy as np
import pytest

from fin_ia_models.data.plausibility import DEFAULT_LIMITS, PlausibilityLimits
from fin_ia_models.data.refresh import refresh_day
from fin_ia_models.data.schema import with_meta
from fin_ia_models.data.sources.files import FilesSource, read_candle_file
from fin_ia_models.data.storage import write_candles_parquet
from fin_ia_models.data.validation import CandleValidationError, check_declared_timeframe, validate_candles
from tests.conftest import make_candles
from tests.test_files_source import to_archive
from tests.test_malformed_corpus import project_csv

H, D = 3_600_000, 86_400_000


# --- bytes -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("unit", [1, 1000], ids=["ms", "us"])
def test_a_bom_on_a_headerless_archive_keeps_the_first_candle(tmp_path, unit):
    frame = make_candles(30)
    path = tmp_path / "TESTUSDT-1h-2024-01.csv"
    path.write_bytes(codecs.BOM_UTF8 + to_archive(frame, H, unit).to_csv(index=False, header=False).encode())
    loaded = read_candle_file(path, "TEST/USDT")
    assert loaded["timestamp"].tolist() == frame["timestamp"].tolist()  # 30 candles, the first one included
    np.testing.assert_array_equal(loaded["open"].to_numpy(), frame["open"].to_numpy())


def test_a_bom_on_a_project_csv_is_ignored(tmp_path):
    path = tmp_path / "TESTUSDT_1h.csv"
    path.write_bytes(codecs.BOM_UTF8 + project_csv(make_candles(10)).encode())
    assert len(read_candle_file(path)) == 10


def test_crlf_lines_and_trailing_blank_lines_are_fine(tmp_path):
    """The shared Binance files end lines with CRLF; a blank line after the last candle hides nothing."""
    path = tmp_path / "TESTUSDT_1h.csv"
    path.write_bytes(project_csv(make_candles(10)).replace("\n", "\r\n").encode() + b"\r\n\n")
    assert read_candle_file(path)["timestamp"].tolist() == make_candles(10)["timestamp"].tolist()


# --- plausibility limits --------------------------------------------------------------------------------------------
def test_default_limits_accept_every_real_file(binance_dir):
    for path in sorted(binance_dir.glob("*.csv")):
        frame = read_candle_file(path)
        ratio = (frame["high"] / frame["low"]).max()
        assert ratio < DEFAULT_LIMITS.max_high_low_ratio / 100, (path.name, ratio)  # two orders of margin


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("min_price", 0.0, "min_price must be a finite number > 0, got 0.0"),
        ("min_price", math.inf, "min_price must be a finite number > 0, got inf"),
        ("max_price", 1e-13, "max_price must be > min_price: 1e-13 <= 1e-12"),
        ("max_volume", -1.0, "max_volume must be > 0, got -1.0"),
        ("max_high_low_ratio", 1.0, "max_high_low_ratio must be > 1"),
        ("max_close_jump", math.nan, "max_close_jump must be > 1"),
    ],
)
def test_limits_reject_bad_values_naming_field_and_value(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("+", r"\+")):
        PlausibilityLimits(**{field: value})


def test_limits_round_trip_through_a_dict():
    limits = PlausibilityLimits(max_close_jump=3.0, max_price=math.inf)
    assert PlausibilityLimits.from_dict(limits.to_dict()) == limits
    with pytest.raises(ValueError, match="no field"):
        PlausibilityLimits.from_dict({"max_wick": 2.0})


def test_limits_are_configurable_both_ways():
    frame = make_candles(48)  # 1 % random walk: close-to-close moves of a few percent at most
    with pytest.raises(CandleValidationError, match=r"\[close_jump\] at row \d+.*beyond max_close_jump = 1.001"):
        validate_candles(frame, "1h", PlausibilityLimits(max_close_jump=1.001))
    expensive = frame.copy()
    expensive[["open", "high", "low", "close"]] *= 1e11  # above the default max_price 1e12
    with pytest.raises(CandleValidationError, match=r"\[price_range\]"):
        validate_candles(expensive, "1h")
    assert validate_candles(expensive, "1h", PlausibilityLimits(max_price=math.inf)).rows == 48


def test_the_wick_bound_is_inclusive_and_the_error_names_the_value():
    frame = make_candles(3)
    frame.loc[1, ["open", "close", "low", "high"]] = [100.0, 100.0, 1.0, 1000.0]  # exactly 1000x: allowed
    frame.loc[0, "close"] = frame.loc[2, "open"] = 100.0
    frame.loc[0, "high"] = max(frame.loc[0, "high"], 100.0)
    frame.loc[2, "low"] = min(frame.loc[2, "low"], 100.0)
    validate_candles(frame, "1h")
    frame.loc[1, "high"] = 1000.1
    with pytest.raises(CandleValidationError, match=r"\[wick_ratio\] at row 1, .*high/low = 1000.1/1 = 1000.1"):
        validate_candles(frame, "1h")


def test_limits_reach_every_reader_and_writer(tmp_path):
    strict = PlausibilityLimits(max_close_jump=1.0001)
    frame = with_meta(make_candles(24), "TEST/USDT", "1h")
    path = tmp_path / "TESTUSDT_1h.csv"
    path.write_text(project_csv(frame))
    for call in (
        lambda: read_candle_file(path, limits=strict),
        lambda: FilesSource(str(tmp_path), limits=strict).load("TEST/USDT", "1h"),
        lambda: write_candles_parquet(frame, tmp_path / "x.parquet", limits=strict),
        lambda: refresh_day(FilesSource(str(tmp_path)), "TEST/USDT", "1h", "2024-01-01", None, 1_800_000_000_000, strict),
    ):
        with pytest.raises(CandleValidationError, match="close_jump"):
            call()


# --- timeframe inference ---------------------------------------------------------------------------------------------
def test_declared_timeframe_is_checked_against_the_spacing():
    daily = make_candles(10, step_ms=D)["timestamp"].to_numpy()
    with pytest.raises(CandleValidationError, match=r"\[timeframe\].*1d apart \(9 of 9 spacings; inferred timeframe "
                       r"1d\), but the file name 'X_1h.csv' declares 1h"):
        check_declared_timeframe(daily, "1h", "the file name 'X_1h.csv'")
    hourly_with_gaps = np.delete(make_candles(48)["timestamp"].to_numpy(), [5, 6, 7, 20, 30, 31])
    check_declared_timeframe(hourly_with_gaps, "1h")  # gaps are not a different timeframe
    check_declared_timeframe(daily[:2], "1h")  # one spacing: could be a gap, not judged
    odd = np.arange(10, dtype=np.int64) * 90 * 60_000 + 1_704_067_200_000
    with pytest.raises(CandleValidationError, match="5400000 ms \\(not a known timeframe\\)"):
        check_declared_timeframe(odd, "1h")
