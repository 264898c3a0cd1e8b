"""Rule-based trading baselines: hand-computed positions, EWMA parity with the plain loop, and perturb-the-future
tests for every rule (alone and through the engine)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fin_ia_models.evaluation.backtest import run_backtest
from fin_ia_models.evaluation.trading_baselines import (TradingBaselineConfig, baseline_positions, ewma_volatility,
                                                        ewma_volatility_ref, forecast_mean_positions,
                                                        grid_log_returns, momentum_positions, vol_target_positions)

HOUR = 3_600_000
T0 = 1_704_067_200_000


def test_momentum_by_hand():
    closes = np.array([100.0, 101.0, 99.0, 102.0, 98.0, np.nan, 103.0, 103.0])
    valid = np.isfinite(closes)
    pos = momentum_positions(closes, valid, lookback=2)[:, 0]
    # t=2: 99 vs 100 → -1; t=3: 102 vs 101 → +1; t=4: 98 vs 99 → -1; t=5 missing → 0; t=6: 103 vs 98 → +1;
    # t=7: its lookback candle (t=5) is missing → 0
    np.testing.assert_array_equal(pos, [0, 0, -1, 1, -1, 0, 1, 0])


def test_ewma_matches_plain_loop_and_skips_gaps():
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.01, (300, 2))
    r[[0, 40, 41, 100], 0] = np.nan
    fast, ref = ewma_volatility(r, 12.0, 10), ewma_volatility_ref(r, 12.0, 10)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(ref))
    np.testing.assert_allclose(fast[~np.isnan(fast)], ref[~np.isnan(ref)], rtol=1e-12)
    # min_periods = 10 finite returns: column 1 has them at t = 9; column 0 (NaN at t = 0) only at t = 10
    assert np.isnan(fast[8, 1]) and np.isfinite(fast[9, 1])
    assert np.isnan(fast[9, 0]) and np.isfinite(fast[10, 0])


def test_vol_target_by_hand():
    # |r| = 1 % every hour: EWMA vol is exactly 1 % → annualised 0.01·√8760; position = 0.25 / that
    closes = 100 * np.exp(0.01 * np.cumsum(np.r_[0.0, np.tile([1.0, -1.0], 50)]))
    config = TradingBaselineConfig(target_vol=0.25, vol_halflife=10.0, vol_min_periods=5)
    pos = vol_target_positions(closes, None, config)[:, 0]
    np.testing.assert_array_equal(pos[:5], 0.0)  # returns at t = 1..4 are only four
    np.testing.assert_allclose(pos[5:], 0.25 / (0.01 * math.sqrt(8760)), rtol=1e-9)
    calm = vol_target_positions(100 * np.exp(1e-5 * np.arange(50.0)), None, config)[:, 0]
    np.testing.assert_array_equal(calm[5:], 1.0)  # a tiny vol forecast is capped at fully invested


def test_forecast_mean_signal():
    pred = np.array([0.002, -0.001, 0.0, 0.02])
    np.testing.assert_array_equal(forecast_mean_positions(pred), [1, -1, 0, 1])
    np.testing.assert_allclose(forecast_mean_positions(pred, "scaled", scale=0.004), [0.5, -0.25, 0.0, 1.0])
    with pytest.raises(ValueError, match="non-finite"):
        forecast_mean_positions(np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="scale > 0"):
        forecast_mean_positions(pred, "scaled")
    with pytest.raises(ValueError, match="unknown mode"):
        forecast_mean_positions(pred, "kelly")


def test_every_rule_ignores_the_future():
    rng = np.random.default_rng(1)
    n, k = 400, 250
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 2)), axis=0))
    closes[[30, 31, 300], 1] = np.nan
    perturbed = closes.copy()
    perturbed[k + 1:] *= rng.uniform(0.7, 1.4, (n - k - 1, 2))
    stamps = T0 + HOUR * np.arange(n)
    base = baseline_positions(closes, np.isfinite(closes))
    again = baseline_positions(perturbed, np.isfinite(perturbed))
    assert set(base) == {"flat", "buy_and_hold", "momentum_24h", "momentum_168h", "vol_target"}
    for name in base:
        np.testing.assert_array_equal(again[name][:k + 1], base[name][:k + 1], err_msg=name)
        pnl, pnl_again = (run_backtest(stamps, c, p[name]).net for c, p in ((closes, base), (perturbed, again)))
        np.testing.assert_array_equal(pnl_again[:k], pnl[:k], err_msg=name)
    signal = rng.normal(0, 1e-3, (n, 2))  # a forecaster's mean, known at t
    future = signal.copy()
    future[k + 1:] = -future[k + 1:]
    np.testing.assert_array_equal(forecast_mean_positions(future)[:k + 1], forecast_mean_positions(signal)[:k + 1])
    assert not np.array_equal(momentum_positions(perturbed, None, 24)[k + 1:], base["momentum_24h"][k + 1:])


def test_grid_returns_and_config_errors():
    r = grid_log_returns(np.array([100.0, 110.0, np.nan, 121.0]))[:, 0]
    assert np.isnan(r[0]) and r[1] == pytest.approx(math.log(1.1)) and np.isnan(r[2:]).all()
    with pytest.raises(ValueError, match="target_vol must be > 0"):
        TradingBaselineConfig(target_vol=0.0)
    with pytest.raises(ValueError, match="momentum_lookbacks"):
        TradingBaselineConfig(momentum_lookbacks=())
    with pytest.raises(ValueError, match="lookback must be >= 1"):
        momentum_positions(np.ones(5), None, 0)
    assert TradingBaselineConfig.from_dict(TradingBaselineConfig().to_dict()) == TradingBaselineConfig()
