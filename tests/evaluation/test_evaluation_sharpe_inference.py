"""PSR, MinTRL, expected maximum Sharpe and DSR: the DSR paper's numerical example, hand-derived cases, a Monte Carlo
check of the false-strategy approximation, and the errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fin_ia_models.evaluation.sharpe_inference import (deflated_sharpe_from_returns, deflated_sharpe_ratio,
                                                       expected_max_sharpe, min_track_record_length,
                                                       probabilistic_sharpe_ratio, psr_from_returns, return_moments)


def test_dsr_paper_numerical_example():
    # Bailey & López de Prado (2014), numerical example: N = 100 trials whose ANNUALISED Sharpe ratios have variance
    # 1/2; the selected strategy's annualised Sharpe is 2.5 over 5 years of daily returns (T = 1250, 250 days a year),
    # skewness -3, kurtosis 10. The paper reports E[max SR] ≈ 0.1132 (per day) and DSR ≈ 0.9004. Step by step:
    #   V = 0.5 / 250 = 0.002 (per-day variance), √V = 0.044721
    #   (1 - γ) Φ⁻¹(1 - 1/100) + γ Φ⁻¹(1 - 1/(100 e)) = 0.42278·2.32635 + 0.57722·2.68106 = 2.53063 → SR0 = 0.11317
    #   SR = 2.5 / √250 = 0.158114; z = (0.158114 - 0.11317)·√1249 / √(1 + 3·0.158114 + 9/4·0.025) = 1.2828
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_ratio(2.5 / math.sqrt(250), 1250, -3.0, 10.0, 100, 0.5 / 250)
    assert dsr.expected_max_sharpe == sr0 and dsr.n_trials == 100
    assert dsr.dsr == pytest.approx(0.9004, abs=1e-4)


def test_psr_hand_derived():
    # skew chosen so the variance factor is exactly 1: 1 - γ3·SR + (γ4 - 1)/4·SR² = 1 ⇔ γ3 = (γ4 - 1)/4·SR = 0.05
    # then z = (0.1 - 0)·√(101 - 1) / 1 = 1 and PSR = Φ(1) = 0.841345
    assert probabilistic_sharpe_ratio(0.1, 101, skew=0.05, kurtosis=3.0) == pytest.approx(0.8413447, abs=1e-7)
    # normal returns, benchmark 0.05: z = 0.05·√99 / √(1 + 0.5·0.01) = 0.49626 → Φ(z)
    z = 0.05 * math.sqrt(99) / math.sqrt(1.005)
    assert probabilistic_sharpe_ratio(0.1, 100, benchmark=0.05) == pytest.approx(stats.norm.cdf(z), abs=1e-12)
    # negative skew and fat tails widen the Sharpe's error: lower PSR at the same SR and T
    assert probabilistic_sharpe_ratio(0.1, 100, skew=-2, kurtosis=10) < probabilistic_sharpe_ratio(0.1, 100)


def test_min_track_record_length_hand_derived_and_consistent_with_psr():
    # normal returns, SR 0.1 per period vs 0: 1 + (1 + 0.01/2)·(1.644854 / 0.1)² = 272.907
    assert min_track_record_length(0.1) == pytest.approx(1 + 1.005 * (1.6448536 / 0.1) ** 2, rel=1e-7)
    n = min_track_record_length(0.08, skew=-1.0, kurtosis=6.0, benchmark=0.02, confidence=0.9)
    assert probabilistic_sharpe_ratio(0.08, n, -1.0, 6.0, benchmark=0.02) == pytest.approx(0.9, abs=1e-12)
    with pytest.raises(ValueError, match="sharpe > benchmark"):
        min_track_record_length(0.01, benchmark=0.02)


def test_expected_max_sharpe_approximates_monte_carlo():
    rng = np.random.default_rng(0)
    for n_trials in (10, 100, 1000):
        simulated = rng.normal(0, 0.3, (4000, n_trials)).max(axis=1).mean()  # zero-skill trials, SR std 0.3
        assert expected_max_sharpe(n_trials, 0.09) == pytest.approx(simulated, rel=0.04)


def test_from_returns_uses_per_period_units():
    rng = np.random.default_rng(1)
    returns = rng.normal(2e-4, 0.01, 5000)
    m = return_moments(returns)
    assert m.sharpe == pytest.approx(returns.mean() / returns.std(ddof=1))
    assert m.kurtosis == pytest.approx(stats.kurtosis(returns) + 3)
    trials = np.array([0.5, 1.5, -0.2, 2.0, 0.9])  # annualised, as logged in MLflow
    dsr = deflated_sharpe_from_returns(returns, trials, periods_per_year=8760)
    assert dsr.trials_sharpe_variance == pytest.approx(np.var(trials, ddof=1) / 8760)
    expected = deflated_sharpe_ratio(m.sharpe, m.n_obs, m.skew, m.kurtosis, 5, np.var(trials, ddof=1) / 8760)
    assert dsr == expected
    assert psr_from_returns(returns) == probabilistic_sharpe_ratio(m.sharpe, m.n_obs, m.skew, m.kurtosis)


def test_errors_are_named():
    with pytest.raises(ValueError, match="at least 2 trials"):
        expected_max_sharpe(1, 0.1)
    with pytest.raises(ValueError, match="at least 2 trials"):
        deflated_sharpe_from_returns(np.random.default_rng(0).normal(size=50), np.array([1.0]), 8760)
    with pytest.raises(ValueError, match="constant"):
        psr_from_returns(np.full(100, 0.001))
    with pytest.raises(ValueError, match="at least 3 returns"):
        return_moments(np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="sharpe_variance must be finite and >= 0"):
        expected_max_sharpe(10, -1.0)
    with pytest.raises(ValueError, match="kurtosis"):
        probabilistic_sharpe_ratio(0.1, 100, kurtosis=0.5)
