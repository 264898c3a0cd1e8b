"""Performance metrics against hand-computed values; undefined metrics are NaN with a reason, bad input an error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fin_ia_models.evaluation.performance import backtest_metrics, drawdown_curve, performance_metrics

RETURNS = np.array([0.01, -0.02, 0.03, 0.0])
POSITIONS = np.array([1.0, 1.0, -1.0, 0.0])


def test_metrics_hand_computed_one_year_of_four_periods():
    m = performance_metrics(RETURNS, POSITIONS, periods_per_year=4)
    total = 1.01 * 0.98 * 1.03 - 1  # = 0.019494
    std = math.sqrt((0.005**2 + 0.025**2 + 0.025**2 + 0.005**2) / 3)  # ddof = 1 around the mean 0.005
    assert m.total_return == pytest.approx(total)
    assert m.annual_return == pytest.approx(total)  # exactly one year of data: CAGR = total return
    assert m.annual_volatility == pytest.approx(std * 2)  # √4
    assert m.sharpe == pytest.approx(0.005 / std * 2)
    # Sortino: mean·P / (sqrt(mean(min(r, 0)²))·√P) = 0.02 / (sqrt(0.02² / 4)·2) = 1
    assert m.sortino == pytest.approx(1.0)
    assert m.max_drawdown == pytest.approx(0.98 - 1)  # peak 1.01 → 1.01·0.98
    assert m.calmar == pytest.approx(total / 0.02)
    assert m.turnover == pytest.approx((1 + 0 + 2 + 1) * 4 / 4)  # Σ|Δp| scaled to a year
    assert m.n_trades == 3 and m.exposure == pytest.approx(0.75)
    assert m.hit_rate == pytest.approx(2 / 3)  # exposed candles 0, 1, 2: two winners
    assert m.undefined == {} and m.n_periods == 4


def test_hourly_annualisation():
    m = performance_metrics(RETURNS, POSITIONS)
    std = math.sqrt(1.3e-3 / 3)
    assert m.sharpe == pytest.approx(0.005 / std * math.sqrt(8760))
    assert m.annual_return == pytest.approx((1.01 * 0.98 * 1.03) ** (8760 / 4) - 1)
    # equity 1.01, 0.9898, 1.019494 (new peak), 1.019494
    np.testing.assert_allclose(drawdown_curve(RETURNS), [0.0, -0.02, 0.0, 0.0], atol=1e-15)
    assert drawdown_curve(RETURNS).min() == pytest.approx(m.max_drawdown)


def test_undefined_metrics_are_nan_with_reasons():
    flat = performance_metrics(np.zeros(100), np.zeros(100))
    assert math.isnan(flat.sharpe) and "constant" in flat.undefined["sharpe"]
    assert math.isnan(flat.sortino) and math.isnan(flat.calmar) and flat.undefined["calmar"] == "no drawdown"
    assert math.isnan(flat.hit_rate) and flat.undefined["hit_rate"] == "never exposed"
    assert flat.total_return == 0.0 and flat.max_drawdown == 0.0 and flat.turnover == 0.0
    winners = performance_metrics(np.array([0.01, 0.02, 0.0]))
    assert math.isnan(winners.sortino) and "no negative return" in winners.undefined["sortino"]
    assert winners.undefined["turnover"] == "positions not given" and winners.n_trades is None
    assert np.isfinite(winners.sharpe)


def test_bad_returns_are_errors():
    with pytest.raises(ValueError, match="empty"):
        performance_metrics(np.array([]))
    with pytest.raises(ValueError, match="non-finite"):
        performance_metrics(np.array([0.01, np.nan]))
    with pytest.raises(ValueError, match="misaligned positions"):
        performance_metrics(RETURNS, POSITIONS[:3])
    with pytest.raises(ValueError, match="wipes the book out"):
        performance_metrics(np.array([0.1, -1.0]))


def test_backtest_metrics_per_symbol():
    from fin_ia_models.evaluation.backtest import run_backtest

    stamps = 1_704_067_200_000 + 3_600_000 * np.arange(5)
    closes = np.array([[100.0, 50.0], [110.0, 50.0], [99.0, 50.0], [99.0, 50.0], [108.9, 50.0]])
    result = run_backtest(stamps, closes, np.array([[1.0, 0.0]] * 5), symbols=("BTC", "FLAT"))
    metrics = backtest_metrics(result)
    # BTC: held 1 for four candles (+10 %, -10 %, 0, +10 %), bought at t = 0 and sold at the end, 15 bps each way
    net = np.array([0.1 - 0.0015, -0.1, 0.0, 0.1, -0.0015])
    assert metrics["BTC"].total_return == pytest.approx(np.prod(1 + net) - 1)
    assert metrics["BTC"].n_trades == 2 and metrics["BTC"].exposure == pytest.approx(0.8)
    assert math.isnan(metrics["FLAT"].sharpe) and metrics["FLAT"].n_trades == 0
