"""Stationary bootstrap CIs (seeded, wider with dependence, centred on the estimate) and the seed spread."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pytest

from fin_ia_models.evaluation.performance import performance_metrics
from fin_ia_models.evaluation.uncertainty import (annual_return, annual_return_ci, annualised_sharpe, seed_spread,
                                                  sharpe_ci, stationary_bootstrap_ci)


def test_statistics_match_empyrical():
    r = np.random.default_rng(0).normal(1e-4, 0.01, 2000)
    assert annualised_sharpe(r) == pytest.approx(empyrical.sharpe_ratio(r, annualization=8760), rel=1e-12)
    assert annual_return(r) == pytest.approx(empyrical.annual_return(r, annualization=8760), rel=1e-10)
    assert annualised_sharpe(r) == pytest.approx(performance_metrics(r).sharpe, rel=1e-12)


def test_sharpe_ci_is_seeded_and_brackets_the_estimate():
    r = np.random.default_rng(1).normal(2e-4, 0.01, 3000)
    a = sharpe_ci(r, n_boot=300, block_length=24, seed=3)
    assert a == sharpe_ci(r, n_boot=300, block_length=24, seed=3)
    assert a != sharpe_ci(r, n_boot=300, block_length=24, seed=4)
    assert a.low < a.estimate < a.high and a.block_length == 24 and a.level == 0.95
    # i.i.d. returns: the Sharpe's standard error is ≈ √(P / T) (Lo 2002), so the 95 % width ≈ 2·1.96·√(8760/3000)
    assert a.high - a.low == pytest.approx(2 * 1.96 * math.sqrt(8760 / 3000), rel=0.2)


def test_block_bootstrap_widens_with_autocorrelation():
    rng = np.random.default_rng(2)
    e = rng.normal(0, 0.01, 4000)
    ar = np.empty_like(e)
    ar[0] = e[0]
    for t in range(1, len(e)):  # strongly autocorrelated returns: i.i.d. resampling would understate the spread
        ar[t] = 0.8 * ar[t - 1] + e[t]
    blocks = annual_return_ci(ar, n_boot=300, block_length=100, seed=0)
    iid = annual_return_ci(ar, n_boot=300, block_length=1, seed=0)
    assert (blocks.high - blocks.low) > 1.8 * (iid.high - iid.low)
    auto = stationary_bootstrap_ci(ar, lambda x: float(x.mean()), n_boot=200, seed=0)
    assert auto.block_length > 5  # Politis-White picks long blocks for AR(0.8)


def test_errors_and_seed_spread():
    with pytest.raises(ValueError, match="constant"):
        sharpe_ci(np.zeros(100))
    with pytest.raises(ValueError, match="at least 10 returns"):
        sharpe_ci(np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="n_boot must be >= 100"):
        sharpe_ci(np.random.default_rng(0).normal(size=50), n_boot=10)
    spread = seed_spread({0: 1.0, 1: 2.0, 2: 4.0})
    assert (spread.mean, spread.min, spread.max, spread.n) == (pytest.approx(7 / 3), 1.0, 4.0, 3)
    assert spread.std == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    with pytest.raises(ValueError, match="at least 3 seeds"):
        seed_spread([1.0, 2.0])
    with pytest.raises(ValueError, match="non-finite"):
        seed_spread([1.0, np.nan, 2.0])
