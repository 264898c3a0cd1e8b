"""Validation rules on hand-made frames: each rule fires on its own defect and names the first offending row."""

from __future__ import annotations

import numpy as np
import pytest

from fin_ia_models.data.schema import to_candle_frame, timeframe_ms
from fin_ia_models.data.validation import CandleValidationError, find_gaps, validate_candles
from tests.conftest import make_candles


def test_valid_frame_reports_size_and_span():
    frame = make_candles(48)
    report = validate_candles(frame, "1h")
    assert report.rows == 48
    assert report.first_ms == frame["timestamp"].iloc[0] and report.last_ms == frame["timestamp"].iloc[-1]
    assert report.gaps == () and report.missing_candles == 0


def test_gaps_are_reported_with_spans_not_filled():
    frame = make_candles(48).drop(index=[10, 11, 12, 30]).reset_index(drop=True)
    report = validate_candles(frame, "1h")
    assert [g.missing for g in report.gaps] == [3, 1]
    assert report.missing_candles == 4
    assert report.gaps[0].before_ms - report.gaps[0].after_ms == 4 * timeframe_ms("1h")
    assert len(frame) == 44  # nothing was added


def test_flat_zero_volume_candles_are_flagged():
    frame = make_candles(10)
    frame.loc[4, ["open", "high", "low", "close"]] = frame.loc[3, "close"]
    frame.loc[4, "volume"] = 0.0
    report = validate_candles(frame, "1h")
    assert report.flat_zero_volume_ms == (int(frame["timestamp"].iloc[4]),)


@pytest.mark.parametrize(
    "column, row, value, rule",
    [
        ("open", 5, np.nan, "finite"),
        ("volume", 7, np.inf, "finite"),
        ("close", 3, 0.0, "positive_price"),
        ("volume", 9, -1.0, "nonnegative_volume"),
        ("low", 6, 1e9, "low_bound"),
        ("high", 2, 1e-3, "high_bound"),
        ("timestamp", 4, 1_704_067_200, "timestamp_unit"),  # seconds
        ("timestamp", 4, 1_704_067_200_000_000, "timestamp_unit"),  # microseconds
        ("timestamp", 8, None, "grid"),  # shifted by one ms
    ],
)
def test_each_rule_names_its_row(column, row, value, rule):
    frame = make_candles(12)
    if rule == "grid":
        frame.loc[row, "timestamp"] = frame.loc[row, "timestamp"] + 1
    else:
        frame.loc[row, column] = value
    with pytest.raises(CandleValidationError) as info:
        validate_candles(frame, "1h")
    assert info.value.rule == rule
    assert info.value.row == row
    assert f"row {row}" in str(info.value) and f"[{rule}]" in str(info.value)


def test_swapped_rows_are_reported_as_unsorted_and_duplicates_as_not_unique():
    frame = make_candles(12)
    swapped = frame.iloc[[0, 1, 3, 2, 4]].reset_index(drop=True)
    with pytest.raises(CandleValidationError, match=r"\[sorted\] at row 3"):
        validate_candles(swapped, "1h")
    duplicated = frame.iloc[[0, 1, 1, 2]].reset_index(drop=True)
    with pytest.raises(CandleValidationError, match=r"\[unique\] at row 2"):
        validate_candles(duplicated, "1h")


def test_error_counts_every_offending_row():
    frame = make_candles(12)
    frame.loc[[2, 5, 9], "volume"] = -1.0
    with pytest.raises(CandleValidationError) as info:
        validate_candles(frame, "1h")
    assert info.value.count == 3 and info.value.row == 2


def test_structure_rules():
    frame = make_candles(5)
    with pytest.raises(CandleValidationError, match=r"\[columns\]"):
        validate_candles(frame.drop(columns="volume"), "1h")
    with pytest.raises(CandleValidationError, match=r"\[dtype\]"):
        validate_candles(frame.astype({"timestamp": float}), "1h")
    with pytest.raises(ValueError, match="unknown timeframe"):
        validate_candles(frame, "7m")


def test_find_gaps_on_daily_grid():
    day = timeframe_ms("1d")
    ts = np.array([0, 1, 2, 5, 6, 10], dtype=np.int64) * day + 1_704_067_200_000
    assert [(g.missing) for g in find_gaps(ts, "1d")] == [2, 3]


def test_to_candle_frame_rejects_wrong_shape():
    with pytest.raises(ValueError, match="6 values"):
        to_candle_frame([[1, 2, 3]], "BTC/USDT", "1h")
