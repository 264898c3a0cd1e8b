"""Backtest engine: exact arithmetic and costs on a hand-made path, the gap policy, no look-ahead, decisions held on
the hourly grid, parity with the plain loop, and named errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fin_ia_models.evaluation.backtest import (CostConfig, candle_grid, hold_positions, run_backtest,
                                               run_backtest_ref)

HOUR = 3_600_000
T0 = 1_704_067_200_000
STAMPS = T0 + HOUR * np.arange(5)


def test_hand_made_path_with_known_costs():
    closes = np.array([100.0, 110.0, 99.0, 99.0, 108.9])  # next-candle returns +10 %, -10 %, 0 %, +10 %
    positions = np.array([1.0, 1.0, -1.0, 0.5, 1.0])  # the last one cannot earn anything: forced flat
    result = run_backtest(STAMPS, closes, positions)  # default costs 10 + 5 bps
    np.testing.assert_allclose(result.positions[:, 0], [1.0, 1.0, -1.0, 0.5, 0.0])
    np.testing.assert_allclose(result.gross[:, 0], [0.1, -0.1, 0.0, 0.05, 0.0], atol=1e-15)
    # |Δp| = 1, 0, 2, 1.5, 0.5 (the last closes the book) at 15 bps
    np.testing.assert_allclose(result.costs[:, 0], [0.0015, 0.0, 0.003, 0.00225, 0.00075], atol=1e-15)
    np.testing.assert_allclose(result.net[:, 0], [0.0985, -0.1, -0.003, 0.04775, -0.00075], atol=1e-15)
    assert result.n_trades().tolist() == [4]
    custom = run_backtest(STAMPS, closes, positions, costs=CostConfig(fee_bps=2.0, slippage_bps=0.0))
    np.testing.assert_allclose(custom.costs[:, 0], 2e-4 * np.array([1, 0, 2, 1.5, 0.5]), atol=1e-15)


def test_gap_is_never_bridged():
    # symbol b misses the candle at +2 h; its price moves 55 → 60 across the gap
    frames = {
        "a": pd.DataFrame({"timestamp": STAMPS, "close": [100.0, 110.0, 99.0, 99.0, 108.9]}),
        "b": pd.DataFrame({"timestamp": np.delete(STAMPS, 2), "close": [50.0, 55.0, 60.0, 66.0]}),
    }
    stamps, closes, valid, symbols = candle_grid(frames)
    assert symbols == ("a", "b") and valid[:, 1].tolist() == [True, True, False, True, True]
    result = run_backtest(stamps, closes, np.ones((5, 2)), valid, symbols=symbols)
    # closed at the last candle before the gap (cost), flat through it, reopened after it (cost), closed at the end
    assert result.tradable[:, 1].tolist() == [True, False, False, True, False]
    np.testing.assert_allclose(result.positions[:, 1], [1.0, 0.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(result.net[:, 1], [0.0985, -0.0015, 0.0, 0.0985, -0.0015], atol=1e-15)
    # the same book with the +2 h candle present would have earned the move: the gap changed only column b
    np.testing.assert_allclose(result.net[:, 0], [0.0985, -0.1, 0.0, 0.1, -0.0015], atol=1e-15)
    np.testing.assert_allclose(result.portfolio_net(), result.net.mean(axis=1))


def test_no_look_ahead_perturbing_future_prices():
    rng = np.random.default_rng(0)
    n, k = 200, 120
    stamps = T0 + HOUR * np.arange(n)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 3)), axis=0))
    positions = rng.uniform(-1, 1, (n, 3))
    base = run_backtest(stamps, closes, positions)
    perturbed = closes.copy()
    perturbed[k + 1:] *= rng.uniform(0.5, 2.0, (n - k - 1, 3))
    again = run_backtest(stamps, perturbed, positions)
    np.testing.assert_array_equal(again.net[:k], base.net[:k])  # PnL up to t = k - 1 (earned by close_k) unchanged
    assert not np.array_equal(again.net[k:], base.net[k:])


def test_vectorised_engine_matches_plain_loop():
    rng = np.random.default_rng(1)
    n = 300
    stamps = T0 + HOUR * np.arange(n)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 4)), axis=0))
    valid = rng.uniform(size=(n, 4)) > 0.05
    closes[~valid] = np.nan
    positions = np.round(rng.uniform(-1, 1, (n, 4)), 1)
    costs = CostConfig(fee_bps=7.5, slippage_bps=3.0)
    result = run_backtest(stamps, closes, positions, valid, costs)
    np.testing.assert_allclose(result.net, run_backtest_ref(stamps, closes, positions, valid, costs), atol=1e-15)
    assert np.isfinite(result.net).all()


def test_hold_positions_forward_fills_without_look_ahead():
    candles = T0 + HOUR * np.arange(10)
    held = hold_positions(candles[[2, 5]], np.array([0.5, -1.0]), candles)
    np.testing.assert_array_equal(held, [0, 0, 0.5, 0.5, 0.5, -1, -1, -1, -1, -1])
    both = hold_positions(candles[[2, 5]], np.array([[0.5, 1.0], [-1.0, 0.0]]), candles)
    assert both.shape == (10, 2) and both[4].tolist() == [0.5, 1.0] and both[5].tolist() == [-1.0, 0.0]
    with pytest.raises(ValueError, match="not a candle open time"):
        hold_positions(np.array([T0 + 1]), np.array([1.0]), candles)
    with pytest.raises(ValueError, match="strictly increasing"):
        hold_positions(candles[[5, 2]], np.array([1.0, 0.0]), candles)
    with pytest.raises(ValueError, match="misaligned decisions"):
        hold_positions(candles[[2, 5]], np.array([1.0]), candles)


def test_bad_inputs_are_named():
    closes = np.array([100.0, 101.0, 102.0, 103.0, 104.0])
    with pytest.raises(ValueError, match=r"in \[-1, 1\].*1\.5 at index \(2, 0\)"):
        run_backtest(STAMPS, closes, np.array([0, 0, 1.5, 0, 0.0]))
    with pytest.raises(ValueError, match="nan at index"):
        run_backtest(STAMPS, closes, np.array([0, np.nan, 0, 0, 0.0]))
    with pytest.raises(ValueError, match="misaligned inputs: positions has 4 rows"):
        run_backtest(STAMPS, closes, np.zeros(4))
    with pytest.raises(ValueError, match="regular 1h grid"):
        run_backtest(np.delete(T0 + HOUR * np.arange(6), 3), closes, np.zeros(5))
    with pytest.raises(ValueError, match="finite close > 0"):
        run_backtest(STAMPS, np.array([100.0, np.nan, 1, 1, 1]), np.zeros(5), valid=np.ones(5, bool))
    with pytest.raises(ValueError, match="2 symbols for 1 columns"):
        run_backtest(STAMPS, closes, np.zeros(5), symbols=("a", "b"))
    with pytest.raises(ValueError, match="fee_bps must be finite and >= 0"):
        CostConfig(fee_bps=-1.0)
    with pytest.raises(ValueError, match="off the 1h grid"):
        candle_grid({"a": pd.DataFrame({"timestamp": [T0, T0 + HOUR + 5], "close": [1.0, 2.0]})})
