"""Inference on Sharpe ratios under non-normal returns and multiple testing.

- Probabilistic Sharpe Ratio (Bailey & López de Prado 2012, "The Sharpe Ratio Efficient Frontier", J. of Risk 15(2),
  eq. 11): the probability that the true Sharpe exceeds a benchmark SR*, given the estimate SR̂ from T returns with
  skewness γ3 and kurtosis γ4 (γ4 = 3 for a normal)::

      PSR(SR*) = Φ( (SR̂ - SR*) √(T - 1) / √(1 - γ3 SR̂ + (γ4 - 1)/4 SR̂²) )

- Minimum track record length (same paper, eq. 12): the T at which PSR(SR*) reaches the confidence 1 - α::

      MinTRL = 1 + (1 - γ3 SR̂ + (γ4 - 1)/4 SR̂²) (z_{1-α} / (SR̂ - SR*))²

- Expected maximum Sharpe of N independent trials whose Sharpe ratios have variance V (Bailey & López de Prado 2014,
  "The Deflated Sharpe Ratio", J. of Portfolio Management 40(5), eq. 2, after the false strategy theorem)::

      SR0 = √V ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e))),   γ = 0.5772... (Euler-Mascheroni)

- Deflated Sharpe Ratio (same paper, eq. 1): DSR = PSR(SR0), i.e. the PSR against the Sharpe a lucky best-of-N would
  show with no skill.

FREQUENCY. Inside every formula SR̂, SR*, SR0 and V are PER PERIOD (per hour for hourly returns), never annualised:
the √(T - 1) term counts periods. ``*_from_returns`` helpers compute SR̂ = mean / std (ddof = 1) of the raw periodic
returns; trial Sharpes read from MLflow are annualised and must be converted (``periods_per_year`` argument). Skewness
and kurtosis are the sample (biased, moment) estimators, as in the papers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

EULER_GAMMA = float(np.euler_gamma)


@dataclass(frozen=True)
class ReturnMoments:
    sharpe: float  # per-period Sharpe ratio mean / std (ddof = 1)
    skew: float  # γ3
    kurtosis: float  # γ4, non-excess (3 for a normal)
    n_obs: int  # T


def return_moments(returns: np.ndarray) -> ReturnMoments:
    """Per-period Sharpe, skewness and kurtosis of periodic returns (T,); constant or short series are errors."""
    returns = np.asarray(returns, np.float64)
    if returns.ndim != 1 or len(returns) < 3:
        raise ValueError(f"need a 1-D series of at least 3 returns, got shape {returns.shape}")
    if not np.isfinite(returns).all():
        raise ValueError(f"returns contain {int((~np.isfinite(returns)).sum())} non-finite values")
    if returns.max() == returns.min():
        raise ValueError("returns are constant: the Sharpe ratio (and PSR/DSR) is undefined")
    return ReturnMoments(
        sharpe=float(returns.mean() / returns.std(ddof=1)),
        skew=float(stats.skew(returns, bias=True)),
        kurtosis=float(stats.kurtosis(returns, fisher=False, bias=True)),
        n_obs=len(returns),
    )


def _sharpe_variance_factor(sharpe: float, skew: float, kurtosis: float) -> float:
    if kurtosis < 1:
        raise ValueError(f"kurtosis (non-excess) must be >= 1, got {kurtosis}")
    # >= 0 for every valid (skew, kurtosis) pair since γ4 >= 1 + γ3² for any distribution
    return 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2


def probabilistic_sharpe_ratio(sharpe: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0,
                               benchmark: float = 0.0) -> float:
    """PSR(benchmark) from a per-period Sharpe estimated on ``n_obs`` returns."""
    if n_obs < 2:
        raise ValueError(f"n_obs must be >= 2, got {n_obs}")
    if not np.isfinite([sharpe, skew, kurtosis, benchmark]).all():
        raise ValueError(f"non-finite input: sharpe={sharpe}, skew={skew}, kurtosis={kurtosis}, benchmark={benchmark}")
    factor = _sharpe_variance_factor(sharpe, skew, kurtosis)
    z = (sharpe - benchmark) * np.sqrt(n_obs - 1) / np.sqrt(factor)
    return float(stats.norm.cdf(z))


def min_track_record_length(sharpe: float, skew: float = 0.0, kurtosis: float = 3.0, benchmark: float = 0.0,
                            confidence: float = 0.95) -> float:
    """Number of periods needed for PSR(benchmark) >= ``confidence`` (per-period Sharpe > benchmark required)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if sharpe <= benchmark:
        raise ValueError(f"MinTRL is undefined unless sharpe > benchmark, got {sharpe} <= {benchmark}")
    factor = _sharpe_variance_factor(sharpe, skew, kurtosis)
    return float(1.0 + factor * (stats.norm.ppf(confidence) / (sharpe - benchmark)) ** 2)


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """E[max SR] of ``n_trials`` independent zero-skill trials with Sharpe variance V (same units as √V)."""
    if n_trials < 2:
        raise ValueError(f"the expected maximum needs at least 2 trials, got n_trials={n_trials}")
    if not np.isfinite(sharpe_variance) or sharpe_variance < 0:
        raise ValueError(f"sharpe_variance must be finite and >= 0, got {sharpe_variance}")
    quantiles = ((1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n_trials)
                 + EULER_GAMMA * stats.norm.ppf(1 - 1 / (n_trials * np.e)))
    return float(np.sqrt(sharpe_variance) * quantiles)


@dataclass(frozen=True)
class DeflatedSharpe:
    dsr: float  # PSR against the expected maximum Sharpe of the trials
    sharpe: float  # per-period Sharpe of the selected strategy
    expected_max_sharpe: float  # SR0, per period
    n_trials: int  # N
    trials_sharpe_variance: float  # V, per period²
    n_obs: int  # T


def deflated_sharpe_ratio(sharpe: float, n_obs: int, skew: float, kurtosis: float, n_trials: int,
                          trials_sharpe_variance: float) -> DeflatedSharpe:
    """DSR of a per-period Sharpe selected among ``n_trials`` trials with per-period Sharpe variance V."""
    sr0 = expected_max_sharpe(n_trials, trials_sharpe_variance)
    dsr = probabilistic_sharpe_ratio(sharpe, n_obs, skew, kurtosis, benchmark=sr0)
    return DeflatedSharpe(dsr, float(sharpe), sr0, int(n_trials), float(trials_sharpe_variance), int(n_obs))


def deflated_sharpe_from_returns(returns: np.ndarray, trial_sharpes: np.ndarray, periods_per_year: int
                                 ) -> DeflatedSharpe:
    """DSR of a strategy's periodic returns (T,) given the ANNUALISED Sharpe ratios of all N trials (N,) (as logged
    in MLflow; annualised with √``periods_per_year``). V = var(trial Sharpes, ddof = 1) / periods_per_year converts
    them to per-period units."""
    trial_sharpes = np.asarray(trial_sharpes, np.float64)
    if trial_sharpes.ndim != 1 or len(trial_sharpes) < 2:
        raise ValueError(f"DSR needs the Sharpe ratios of at least 2 trials, got {trial_sharpes.size}")
    if not np.isfinite(trial_sharpes).all():
        raise ValueError("trial Sharpe ratios contain non-finite values")
    if periods_per_year < 1:
        raise ValueError(f"periods_per_year must be >= 1, got {periods_per_year}")
    moments = return_moments(returns)
    variance = float(np.var(trial_sharpes, ddof=1)) / periods_per_year
    return deflated_sharpe_ratio(moments.sharpe, moments.n_obs, moments.skew, moments.kurtosis,
                                 len(trial_sharpes), variance)


def psr_from_returns(returns: np.ndarray, benchmark: float = 0.0) -> float:
    """PSR of periodic returns against a per-period benchmark Sharpe."""
    m = return_moments(returns)
    return probabilistic_sharpe_ratio(m.sharpe, m.n_obs, m.skew, m.kurtosis, benchmark)
