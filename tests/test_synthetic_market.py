"""The synthetic market: stylized facts match real BTC/USDT 1h, and candles are seeded, range-independent and closed.

Acceptance bounds, measured on Binance BTC/USDT 1h 2017-08-17 → 2024-12-31 (64,495 returns) when written:
excess kurtosis 34.0; |r| autocorrelation 0.31 at lag 1 falling to 0.21–0.22 by lag 24 (min 0.207); max |acf of r|
over lags 1–24 is 0.045 (lag 1: -0.045, lag 24: -0.041); corr(|r|, log volume) 0.19 raw, 0.49 with log volume
detrended by its trailing 30-day mean. The raw figure is low only because Binance's BTC volume grew ~20× during 2017;
ETH/SOL/BNB 1h give 0.49–0.58 raw and 0.45–0.51 detrended.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fin_ia_models.data.schema import DAY_MS, HOUR_MS, MINUTE_MS, timeframe_ms, with_meta
from fin_ia_models.data.sources.base import MarketSource
from fin_ia_models.data.sources.synthetic import SyntheticMarket, SyntheticMarketConfig
from fin_ia_models.data.stylized_facts import (
    autocorr,
    excess_kurtosis,
    grid_log_returns,
    log_returns,
    stylized_facts,
)
from fin_ia_models.data.validation import validate_candles

ORIGIN = SyntheticMarketConfig().origin_ms  # 2017-01-01 00:00 UTC
REAL_START = 1_502_942_400_000  # 2017-08-17 04:00 UTC: first real BTC/USDT 1h candle
REAL_END = 1_735_689_600_000  # 2025-01-01 00:00 UTC: the real files stop just before
SEEDS = (0, 1, 2)

# stylized-fact bounds, met by real BTC with margin (see module docstring)
KURTOSIS_MIN = 5.0  # real: 34
ABS_ACF_MIN = 0.10  # at every lag 1–24; real minimum 0.207
RET_ACF_MAX = 0.06  # at every lag 1–24; real maximum 0.045
# what "match" means between real and synthetic
KURTOSIS_RATIO = 5.0  # same order of magnitude: within a factor 5 either way
ABS_ACF_RATIO = 2.0  # the |r| autocorrelation curve within a factor 2 of the real one at every lag
VOL_VOLUME_TOLERANCE = 0.15  # detrended vol–volume correlation within ±0.15 of the real one
RETURN_STD_RATIO = 1.5  # hourly return std within a factor 1.5 (right scale, not just right shape)


def pinned(ms: int):
    return lambda: ms


# --- stylized_facts: pure functions against hand-computed values -----------------------------------------------------

def test_log_returns_hand_values():
    np.testing.assert_allclose(log_returns([1.0, math.e, 1.0]), [1.0, -1.0])
    with pytest.raises(ValueError, match="positive"):
        log_returns([1.0, 0.0, 2.0])


@pytest.mark.parametrize(
    "x, expected",
    [
        ([1.0, -1.0] * 10, -2.0),  # two-point law: m4/m2² = 1 → excess -2
        ([0.0] * 8 + [1.0, -1.0], 2.0),  # m2 = m4 = 0.2 → 0.2 / 0.04 = 5 → excess 2
    ],
)
def test_excess_kurtosis_hand_values(x, expected):
    assert excess_kurtosis(np.asarray(x)) == pytest.approx(expected)


@pytest.mark.parametrize(
    "x, lag, expected",
    [
        ([1.0, -1.0, 1.0, -1.0], 1, -1.0),  # mean 0, var 1, every lag-1 product is -1
        ([1.0, 2.0, 3.0, 4.0], 2, -0.6),  # mean 2.5, var 1.25; products -1.5·0.5 and -0.5·1.5 → -0.75 / 1.25
    ],
)
def test_autocorr_hand_values(x, lag, expected):
    assert autocorr(np.asarray(x), lag) == pytest.approx(expected)


def test_autocorr_skips_pairs_that_touch_a_gap():
    x = np.array([1.0, np.nan, 1.0, -1.0, np.nan, -1.0])
    # finite values 1, 1, -1, -1: mean 0, var 1; lag-1 pairs with both finite: (1, -1) only → -1
    assert autocorr(x, 1) == pytest.approx(-1.0)
    # lag-2 pairs with both finite: (x0, x2) = (1, 1) and (x3, x5) = (-1, -1) → +1
    assert autocorr(x, 2) == pytest.approx(1.0)


def test_grid_log_returns_leave_gaps_as_nan():
    step = HOUR_MS
    frame = pd.DataFrame({
        "timestamp": np.array([0, 1, 2, 4, 5], dtype=np.int64) * step + ORIGIN,
        "open": 1.0, "high": 1.0, "low": 1.0,
        "close": np.exp([0.0, 0.1, 0.3, 0.0, -0.2]),
        "volume": 1.0,
    })
    r = grid_log_returns(frame, "1h")
    np.testing.assert_allclose(r, [0.1, 0.2, np.nan, np.nan, -0.2])  # slot 3 is missing: no return into or out of it


def test_stylized_facts_needs_timeframe_attr():
    frame = SyntheticMarket(clock=pinned(REAL_END)).fetch("BTC/USDT", "1h", ORIGIN, ORIGIN + 40 * DAY_MS)
    frame.attrs.clear()
    with pytest.raises(ValueError, match="timeframe"):
        stylized_facts(frame)


# --- acceptance: the stylized facts of real BTC/USDT 1h, on both, and matching --------------------------------------

def _check_facts(facts: dict, who: str) -> None:
    assert facts["excess_kurtosis"] > KURTOSIS_MIN, f"{who}: tails not fat enough"
    assert facts["abs_acf_min"] > ABS_ACF_MIN, f"{who}: no volatility clustering at some lag: {facts['abs_acf']}"
    assert facts["ret_acf_max_abs"] < RET_ACF_MAX, f"{who}: returns autocorrelated: {facts['ret_acf']}"
    assert facts["vol_volume_corr"] > 0.1 and facts["vol_volume_corr_detrended"] > 0.3, f"{who}: volume ignores vol"


def test_synthetic_matches_real_btc_stylized_facts(binance_dir):
    real = pd.read_csv(binance_dir / "BTCUSDT_1h.csv").rename(columns={"timestamp_ms": "timestamp"})
    real_facts = stylized_facts(with_meta(real, "BTC/USDT", "1h"))
    real_std = np.nanstd(grid_log_returns(real, "1h"))
    _check_facts(real_facts, "real BTC/USDT 1h")

    synthetic = {}
    for seed in SEEDS:
        market = SyntheticMarket(SyntheticMarketConfig(seed=seed), clock=pinned(REAL_END))
        frame = market.fetch("BTC/USDT", "1h", REAL_START, REAL_END)  # same span as the real file
        synthetic[seed] = (stylized_facts(frame), np.std(grid_log_returns(frame, "1h")))

    rows = [("n returns", "n_returns", "{:d}"), ("excess kurtosis", "excess_kurtosis", "{:.1f}"),
            ("|r| acf lag 1", None, "{:.3f}"), ("|r| acf lag 24", None, "{:.3f}"),
            ("|r| acf mean 1-24", "abs_acf_mean", "{:.3f}"), ("|r| acf min 1-24", "abs_acf_min", "{:.3f}"),
            ("max |r acf| 1-24", "ret_acf_max_abs", "{:.3f}"), ("corr(|r|, log vol)", "vol_volume_corr", "{:.3f}"),
            ("  detrended 30d", "vol_volume_corr_detrended", "{:.3f}"), ("std of r", None, "{:.4f}")]

    def cell(facts, std, label, key, fmt):
        value = {"|r| acf lag 1": facts["abs_acf"][0], "|r| acf lag 24": facts["abs_acf"][23], "std of r": std}.get(
            label, facts.get(key))
        return fmt.format(value)

    print("\n" + f"{'stylized fact':22s}{'real BTC':>10s}" + "".join(f"{'seed ' + str(s):>10s}" for s in SEEDS))
    for label, key, fmt in rows:
        print(f"{label:22s}{cell(real_facts, real_std, label, key, fmt):>10s}"
              + "".join(f"{cell(f, sd, label, key, fmt):>10s}" for f, sd in synthetic.values()))

    real_abs_acf = np.asarray(real_facts["abs_acf"])
    for seed, (facts, std) in synthetic.items():
        who = f"synthetic seed {seed}"
        _check_facts(facts, who)
        ratio = facts["excess_kurtosis"] / real_facts["excess_kurtosis"]
        assert 1 / KURTOSIS_RATIO < ratio < KURTOSIS_RATIO, f"{who}: kurtosis ratio {ratio:.2f}"
        acf_ratio = np.asarray(facts["abs_acf"]) / real_abs_acf  # (24,)
        in_band = (acf_ratio > 1 / ABS_ACF_RATIO) & (acf_ratio < ABS_ACF_RATIO)
        assert np.all(in_band), f"{who}: |r| acf ratio to real {acf_ratio}"
        gap = abs(facts["vol_volume_corr_detrended"] - real_facts["vol_volume_corr_detrended"])
        assert gap < VOL_VOLUME_TOLERANCE, f"{who}: detrended vol-volume correlation off by {gap:.3f}"
        assert 1 / RETURN_STD_RATIO < std / real_std < RETURN_STD_RATIO, f"{who}: std {std:.4f} vs real {real_std:.4f}"


# --- determinism and range independence ------------------------------------------------------------------------------

def test_same_seed_same_frame_and_different_seed_different_frame():
    start, end = ORIGIN + 300 * DAY_MS, ORIGIN + 310 * DAY_MS
    a = SyntheticMarket(SyntheticMarketConfig(seed=7), clock=pinned(REAL_END)).fetch("ETH/USDT", "15m", start, end)
    b = SyntheticMarket(SyntheticMarketConfig(seed=7), clock=pinned(REAL_END)).fetch("ETH/USDT", "15m", start, end)
    c = SyntheticMarket(SyntheticMarketConfig(seed=8), clock=pinned(REAL_END)).fetch("ETH/USDT", "15m", start, end)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert len(a) == len(c) == 10 * 96
    assert not np.any(np.isclose(a["close"].to_numpy(), c["close"].to_numpy(), rtol=1e-12))


@pytest.mark.parametrize("block_steps", [7, 4096])  # tiny blocks: every day crosses block boundaries
def test_day_by_day_fetches_equal_one_fetch(block_steps):
    config = SyntheticMarketConfig(block_steps=block_steps)
    first_day = ORIGIN + 169 * DAY_MS  # the default 4096-hour block boundary falls on day 170 (2017-06-20 16:00)
    days = 4
    one = SyntheticMarket(config, clock=pinned(REAL_END)).fetch("BTC/USDT", "1h", first_day, first_day + days * DAY_MS)
    daily_market = SyntheticMarket(config, clock=pinned(REAL_END), max_cached_blocks=1)  # forces regeneration too
    daily = [daily_market.fetch("BTC/USDT", "1h", first_day + d * DAY_MS, first_day + (d + 1) * DAY_MS)
             for d in range(days)]
    joined = pd.concat(daily, ignore_index=True)
    pd.testing.assert_frame_equal(joined, one, check_exact=True)
    # open = previous close, also across the seams between the daily fetches and the blocks
    np.testing.assert_array_equal(joined["open"].to_numpy()[1:], joined["close"].to_numpy()[:-1])


def test_sub_range_equals_its_slice_and_out_of_order_fetches_agree():
    market = SyntheticMarket(clock=pinned(REAL_END))
    a, b, c = ORIGIN + 500 * DAY_MS, ORIGIN + 520 * DAY_MS + 17 * MINUTE_MS, ORIGIN + 530 * DAY_MS
    late_first = SyntheticMarket(clock=pinned(REAL_END)).fetch("SOL/USDT", "5m", b, c)  # fresh: sweeps from origin
    whole = market.fetch("SOL/USDT", "5m", a, c)
    part = market.fetch("SOL/USDT", "5m", b, c)
    expected = whole[whole["timestamp"] >= b].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, expected, check_exact=True)
    pd.testing.assert_frame_equal(late_first, expected, check_exact=True)
    assert part["timestamp"].iloc[0] == b + 3 * MINUTE_MS  # first 5m grid point at or after b


def test_symbols_differ_in_level_and_path_but_move_together():
    market = SyntheticMarket(clock=pinned(REAL_END))
    span = (ORIGIN + 400 * DAY_MS, ORIGIN + 500 * DAY_MS)
    btc, eth, other = (market.fetch(s, "1h", *span) for s in ("BTC/USDT", "ETH/USDT", "XYZ/USDT"))
    assert 10_000 < btc["close"].median() < 160_000
    assert 600 < eth["close"].median() < 10_000
    assert 25 < other["close"].median() < 400
    corr = np.corrcoef(np.diff(np.log(btc["close"])), np.diff(np.log(eth["close"])))[0, 1]
    assert 0.2 < corr < 0.9, f"BTC/ETH return correlation {corr:.2f}: shared market shock should give a partial link"


# --- closed candles only, origin, validity ---------------------------------------------------------------------------

def test_never_returns_an_open_candle():
    t = ORIGIN + 100 * DAY_MS + 7 * HOUR_MS
    mid_candle = SyntheticMarket(clock=pinned(t + 30 * MINUTE_MS)).fetch("BTC/USDT", "1h", t - 5 * HOUR_MS, t + DAY_MS)
    assert mid_candle["timestamp"].iloc[-1] == t - HOUR_MS  # the candle opened at t is still running
    at_close = SyntheticMarket(clock=pinned(t + HOUR_MS)).fetch("BTC/USDT", "1h", t - 5 * HOUR_MS, t + DAY_MS)
    assert at_close["timestamp"].iloc[-1] == t  # closes exactly at now: closed
    pd.testing.assert_frame_equal(at_close.iloc[:-1], mid_candle, check_exact=True)
    future = SyntheticMarket(clock=pinned(t)).fetch("BTC/USDT", "1d", t + DAY_MS, t + 3 * DAY_MS)
    assert len(future) == 0 and list(future.columns) == list(mid_candle.columns)


@pytest.mark.parametrize("start, end, match", [
    (ORIGIN - HOUR_MS, ORIGIN + DAY_MS, "starts at 2017-01-01"),
    (ORIGIN + DAY_MS, ORIGIN, "before start_ms"),
])
def test_bad_ranges_raise(start, end, match):
    with pytest.raises(ValueError, match=match):
        SyntheticMarket(clock=pinned(REAL_END)).fetch("BTC/USDT", "1h", start, end)


def test_unknown_timeframe_raises():
    with pytest.raises(ValueError, match="unknown timeframe"):
        SyntheticMarket(clock=pinned(REAL_END)).fetch("BTC/USDT", "1w", ORIGIN, ORIGIN + DAY_MS)


@pytest.mark.parametrize("timeframe, days", [("1m", 45), ("1h", 2 * 365), ("1d", 7 * 365)])
def test_long_series_pass_validation_for_several_timeframes(timeframe, days):
    market = SyntheticMarket(SyntheticMarketConfig(seed=3), clock=pinned(REAL_END))
    frame = market.fetch("BTC/USDT", timeframe, ORIGIN + 10 * DAY_MS, ORIGIN + (10 + days) * DAY_MS)
    step = timeframe_ms(timeframe)
    assert len(frame) == days * DAY_MS // step
    report = validate_candles(frame, timeframe)  # finite, positive, bounds, sorted, unique, on grid
    assert report.missing_candles == 0
    assert frame.attrs == {"symbol": "BTC/USDT", "timeframe": timeframe}
    assert frame["timestamp"].dtype == np.int64
    o, h, low, c, v = (frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    assert np.all(low <= np.minimum(o, c)) and np.all(h >= np.maximum(o, c)) and np.all(v > 0)
    np.testing.assert_array_equal(o[1:], c[:-1])
    # per-candle vol scales like sqrt(timeframe): hourly std of log returns lands near the BTC-like 0.8%
    hourly_equivalent = np.std(np.diff(np.log(c))) / math.sqrt(step / HOUR_MS)
    assert 0.003 < hourly_equivalent < 0.02


def test_is_a_market_source():
    market = SyntheticMarket()
    assert isinstance(market, MarketSource) and market.name == "synthetic"


@pytest.mark.parametrize("override, match", [
    ({"origin_ms": ORIGIN + HOUR_MS}, "00:00 UTC"),
    ({"t_dof": 4.0}, "t_dof"),
    ({"market_correlation": 1.5}, "market_correlation"),
    ({"regime_transitions": ((0.5, 0.5, 0.0), (0.8, 0.0, 0.2), (0.3, 0.7, 0.0))}, "jump chain"),
    ({"regime_log_vol": (0.0, 0.5)}, "regime_log_vol"),
    ({"seed": -1}, "seed"),
    ({"levels": (("BTC", -1.0, 10.0),)}, "levels"),
])
def test_config_rejects_bad_values(override, match):
    with pytest.raises(ValueError, match=match):
        SyntheticMarketConfig(**override)
