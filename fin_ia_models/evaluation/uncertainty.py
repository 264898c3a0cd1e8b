"""Uncertainty of backtest metrics: stationary block bootstrap confidence intervals and the spread across seeds.

The stationary bootstrap (Politis & Romano 1994, "The stationary bootstrap", JASA 89(428)) resamples blocks of random
(geometric) length with mean ``block_length``, wrapping around the end, so resamples stay stationary and keep the
short-range dependence (volatility clustering) of hourly returns that an i.i.d. bootstrap would destroy. It is run by
``arch.bootstrap.StationaryBootstrap`` with a seeded numpy Generator; the default mean block length is the automatic
choice of Politis & White (2004) with the correction of Patton, Politis & White (2009)
(``arch.bootstrap.optimal_block_length``). Intervals are percentile intervals of the statistic over the resamples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fin_ia_models.evaluation.performance import PERIODS_PER_YEAR


@dataclass(frozen=True)
class BootstrapCI:
    estimate: float  # the statistic on the original series
    low: float  # lower percentile bound
    high: float  # upper percentile bound
    level: float  # e.g. 0.95
    block_length: float  # mean block length used (periods)
    n_boot: int  # resamples


def _check(returns: np.ndarray) -> np.ndarray:
    returns = np.asarray(returns, np.float64)
    if returns.ndim != 1 or len(returns) < 10:
        raise ValueError(f"need a 1-D series of at least 10 returns, got shape {returns.shape}")
    if not np.isfinite(returns).all():
        raise ValueError(f"returns contain {int((~np.isfinite(returns)).sum())} non-finite values")
    return returns


def annualised_sharpe(returns: np.ndarray, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """mean / std (ddof = 1) · √periods_per_year: the same definition as ``empyrical.sharpe_ratio``."""
    return float(returns.mean() / returns.std(ddof=1) * math.sqrt(periods_per_year))


def annual_return(returns: np.ndarray, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """CAGR Π(1 + r)^(P / T) - 1: the same definition as ``empyrical.annual_return``."""
    return float(np.expm1(np.log1p(returns).sum() * periods_per_year / len(returns)))


def stationary_bootstrap_ci(returns: np.ndarray, statistic: Callable[[np.ndarray], float], n_boot: int = 1000,
                            level: float = 0.95, block_length: float | None = None, seed: int = 0) -> BootstrapCI:
    """Percentile CI of ``statistic(returns)`` over ``n_boot`` stationary-bootstrap resamples of returns (T,)."""
    from arch.bootstrap import StationaryBootstrap, optimal_block_length

    returns = _check(returns)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 100:
        raise ValueError(f"n_boot must be >= 100 for a percentile interval, got {n_boot}")
    if block_length is None:
        block_length = max(1.0, float(optimal_block_length(returns)["stationary"].iloc[0]))
    if not block_length >= 1:
        raise ValueError(f"block_length must be >= 1, got {block_length}")
    bootstrap = StationaryBootstrap(math.ceil(block_length), returns, seed=np.random.default_rng(seed))
    values = bootstrap.apply(lambda x: np.array([statistic(x)]), reps=n_boot)[:, 0]  # (n_boot,)
    if not np.isfinite(values).all():
        raise ValueError(f"{int((~np.isfinite(values)).sum())} of {n_boot} bootstrap statistics are not finite "
                         f"(a resample with zero variance?)")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return BootstrapCI(float(statistic(returns)), float(low), float(high), level, float(math.ceil(block_length)),
                       n_boot)


def sharpe_ci(returns: np.ndarray, periods_per_year: int = PERIODS_PER_YEAR, **kwargs) -> BootstrapCI:
    """Bootstrap CI of the annualised Sharpe ratio; a constant series is an error (Sharpe undefined)."""
    returns = _check(returns)
    if returns.max() == returns.min():
        raise ValueError("returns are constant: the Sharpe ratio is undefined, no interval")
    return stationary_bootstrap_ci(returns, lambda x: annualised_sharpe(x, periods_per_year), **kwargs)


def annual_return_ci(returns: np.ndarray, periods_per_year: int = PERIODS_PER_YEAR, **kwargs) -> BootstrapCI:
    """Bootstrap CI of the annual return (CAGR)."""
    returns = _check(returns)
    if (returns <= -1).any():
        raise ValueError(f"a simple return <= -1 wipes the book out, got {returns.min()}")
    return stationary_bootstrap_ci(returns, lambda x: annual_return(x, periods_per_year), **kwargs)


@dataclass(frozen=True)
class SeedSpread:
    mean: float
    std: float  # sample std (ddof = 1) across seeds
    min: float
    max: float
    n: int  # seeds


def seed_spread(values_by_seed: Mapping[int, float] | Sequence[float], min_seeds: int = 3) -> SeedSpread:
    """Spread of one metric across seeds of the same config (the issue asks for >= 3 seeds)."""
    values = np.asarray(list(values_by_seed.values()) if isinstance(values_by_seed, Mapping) else values_by_seed,
                        np.float64)
    if min_seeds < 2:
        raise ValueError(f"min_seeds must be >= 2 (a spread needs two values), got {min_seeds}")
    if values.ndim != 1 or len(values) < min_seeds:
        raise ValueError(f"need the metric of at least {min_seeds} seeds, got {values.size}")
    if not np.isfinite(values).all():
        raise ValueError(f"seed values contain non-finite entries: {values.tolist()}")
    return SeedSpread(float(values.mean()), float(values.std(ddof=1)), float(values.min()), float(values.max()),
                      len(values))
