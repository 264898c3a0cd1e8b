"""Proper scores of ensemble (sample) forecasts: CRPS, energy score, PIT and central-interval coverage.

Dims: n forecast origins, m ensemble members (samples), d dimensions of a joint forecast (e.g. the H hourly returns of a
path).

- CRPS of an ensemble (Gneiting & Raftery 2007, eq. 21): ``CRPS(F, y) = E|X - y| - ½ E|X - X'|`` with X, X' independent
  draws of the ensemble's empirical distribution. This "standard" estimator divides the spread term by m², i.e. it is
  the exact CRPS of the empirical distribution. The "fair" variant (Ferro 2014, "Fair scores for ensemble forecasts",
  QJRMS 140) divides it by m(m - 1): it is the unbiased estimator of the CRPS of the distribution the members are drawn
  from, so ensembles of different sizes compare fairly. Both are computed in O(m log m) per origin from the sorted
  members: ``Σ_{i,j} |x_i - x_j| = 2 Σ_k (2k - m - 1) x_(k)`` (k = 1..m, x_(k) the k-th smallest).
- Energy score (Gneiting, Stadler, Westveld & Johnson 2008, "Assessing probabilistic forecasts of multivariate
  quantities", eq. 2): ``ES(F, y) = E||X - y|| - ½ E||X - X'||`` with the Euclidean norm; for d = 1 it is the CRPS.
- PIT (probability integral transform, Dawid 1984; for ensembles the rank histogram of Hamill 2001), randomised so a
  calibrated ensemble gives exactly Uniform(0, 1) PIT values, ties included.

Each fast path keeps a plain ``*_ref`` beside it (double loops) that the tests compare against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


def _check_ensemble(samples: np.ndarray, y: np.ndarray, joint: bool) -> tuple[np.ndarray, np.ndarray]:
    samples = np.asarray(samples, np.float64)
    y = np.asarray(y, np.float64)
    want = 3 if joint else 2
    if samples.ndim != want:
        shape = "(n, m, d)" if joint else "(n, m)"
        raise ValueError(f"samples must have shape {shape}, got {samples.shape}")
    if y.shape != (samples.shape[0],) + samples.shape[2:]:
        raise ValueError(f"y shape {y.shape} does not match samples {samples.shape}: expected "
                         f"{(samples.shape[0],) + samples.shape[2:]}")
    if samples.shape[1] < 1:
        raise ValueError("the ensemble needs at least 1 member, got m = 0")
    if not np.isfinite(samples).all():
        raise ValueError(f"samples contain {int((~np.isfinite(samples)).sum())} non-finite values")
    if not np.isfinite(y).all():
        raise ValueError(f"y contains {int((~np.isfinite(y)).sum())} non-finite values (drop missing targets first)")
    return samples, y


def _spread_denominator(m: int, fair: bool) -> float:
    if fair and m < 2:
        raise ValueError(f"the fair score needs at least 2 members, got m = {m}")
    return float(m * (m - 1)) if fair else float(m * m)


def crps_ensemble(samples: np.ndarray, y: np.ndarray, fair: bool = False) -> np.ndarray:
    """CRPS per origin (n,) of ensembles ``samples`` (n, m) for outcomes ``y`` (n,); lower is better."""
    samples, y = _check_ensemble(samples, y, joint=False)
    m = samples.shape[1]
    denominator = _spread_denominator(m, fair)
    accuracy = np.abs(samples - y[:, None]).mean(axis=1)  # (n,) E|X - y|
    ordered = np.sort(samples, axis=1)  # (n, m)
    weights = 2.0 * np.arange(1, m + 1) - m - 1  # (m,) 2k - m - 1
    # ½ Σ_{i,j}|x_i - x_j| = Σ_k (2k - m - 1) x_(k)
    half_spread = ordered @ weights / denominator  # (n,)
    return accuracy - half_spread


def crps_ensemble_ref(samples: np.ndarray, y: np.ndarray, fair: bool = False) -> np.ndarray:
    """Plain O(m²) double loop of the same estimator (reference for ``crps_ensemble``)."""
    samples, y = _check_ensemble(samples, y, joint=False)
    n, m = samples.shape
    denominator = _spread_denominator(m, fair)
    out = np.empty(n)
    for row in range(n):
        accuracy = sum(abs(x - y[row]) for x in samples[row]) / m
        spread = sum(abs(a - b) for a in samples[row] for b in samples[row])
        out[row] = accuracy - 0.5 * spread / denominator
    return out


def crps_gaussian(mu: np.ndarray, sigma: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Closed-form CRPS of N(mu, sigma²) (Gneiting & Raftery 2007, eq. 22): σ[z(2Φ(z) - 1) + 2φ(z) - 1/√π]."""
    sigma = np.asarray(sigma, np.float64)
    if (sigma <= 0).any():
        raise ValueError(f"sigma must be > 0, got min {sigma.min()}")
    z = (np.asarray(y, np.float64) - mu) / sigma
    return sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


def energy_score(samples: np.ndarray, y: np.ndarray, fair: bool = False, chunk: int = 512) -> np.ndarray:
    """Energy score per origin (n,) of joint ensembles ``samples`` (n, m, d) for outcomes ``y`` (n, d).

    The spread term needs all m² member pairs (no sorting trick beyond d = 1); origins are processed in chunks so the
    (chunk, m, m) distance array stays small."""
    samples, y = _check_ensemble(samples, y, joint=True)
    n, m, _ = samples.shape
    denominator = _spread_denominator(m, fair)
    accuracy = np.linalg.norm(samples - y[:, None, :], axis=2).mean(axis=1)  # (n,)
    spread = np.empty(n)
    for start in range(0, n, chunk):
        block = samples[start:start + chunk]  # (c, m, d)
        gram = np.einsum("cid,cjd->cij", block, block)  # (c, m, m)
        sq = np.einsum("cid,cid->ci", block, block)  # (c, m)
        dist2 = np.maximum(sq[:, :, None] + sq[:, None, :] - 2.0 * gram, 0.0)  # (c, m, m), clip rounding below 0
        spread[start:start + chunk] = np.sqrt(dist2).sum(axis=(1, 2))
    return accuracy - 0.5 * spread / denominator


def energy_score_ref(samples: np.ndarray, y: np.ndarray, fair: bool = False) -> np.ndarray:
    """Plain double loop over member pairs (reference for ``energy_score``)."""
    samples, y = _check_ensemble(samples, y, joint=True)
    n, m, _ = samples.shape
    denominator = _spread_denominator(m, fair)
    out = np.empty(n)
    for row in range(n):
        accuracy = sum(float(np.sqrt(((x - y[row]) ** 2).sum())) for x in samples[row]) / m
        spread = sum(float(np.sqrt(((a - b) ** 2).sum())) for a in samples[row] for b in samples[row])
        out[row] = accuracy - 0.5 * spread / denominator
    return out


def pit_values(samples: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomised PIT (n,) in [0, 1): ``(R + V) / (m + 1)``.

    R is the rank of y among the m members (count of members below y, plus a uniform draw in 0..#ties so a tie is
    placed at random among the equal members) and V ~ U(0, 1). If y is exchangeable with the members, R is uniform on
    0..m and the PIT is exactly Uniform(0, 1), for any m and with ties (continuous rank-histogram PIT)."""
    samples, y = _check_ensemble(samples, y, joint=False)
    m = samples.shape[1]
    below = (samples < y[:, None]).sum(axis=1)  # (n,)
    ties = (samples == y[:, None]).sum(axis=1)  # (n,)
    rank = below + rng.integers(0, ties + 1)  # uniform over the ties + 1 slots y could take among equal members
    return (rank + rng.uniform(size=len(y))) / (m + 1)


@dataclass(frozen=True)
class PITUniformity:
    """Histogram of PIT values and two tests of uniformity (high p-values: no evidence of miscalibration)."""

    counts: np.ndarray  # (n_bins,) PIT values per equal-width bin of [0, 1]
    expected: float  # count per bin under uniformity
    chi2_statistic: float  # Pearson chi² of the counts against the uniform expectation
    chi2_pvalue: float  # its p-value with n_bins - 1 degrees of freedom
    ks_statistic: float  # Kolmogorov-Smirnov distance to Uniform(0, 1)
    ks_pvalue: float  # its p-value (PIT values are assumed independent; overlapping horizons make this optimistic)


def pit_uniformity(pit: np.ndarray, n_bins: int = 10) -> PITUniformity:
    """Counts per bin and chi²/KS tests of ``pit`` (k,) against Uniform(0, 1)."""
    pit = np.asarray(pit, np.float64)
    if pit.ndim != 1 or len(pit) == 0:
        raise ValueError(f"pit must be a non-empty 1-D array, got shape {pit.shape}")
    if not np.isfinite(pit).all() or pit.min() < 0 or pit.max() > 1:
        raise ValueError(f"pit values must be finite and in [0, 1], got range [{np.nanmin(pit)}, {np.nanmax(pit)}]")
    if n_bins < 2:
        raise ValueError(f"n_bins must be >= 2, got {n_bins}")
    counts, _ = np.histogram(pit, bins=n_bins, range=(0.0, 1.0))
    expected = len(pit) / n_bins
    chi2 = stats.chisquare(counts, np.full(n_bins, expected))
    ks = stats.kstest(pit, "uniform")
    return PITUniformity(counts, expected, float(chi2.statistic), float(chi2.pvalue), float(ks.statistic),
                         float(ks.pvalue))


def interval_coverage(samples: np.ndarray, y: np.ndarray, levels: Sequence[float] = (0.5, 0.9)) -> dict[float, float]:
    """Share of origins whose outcome lies in the ensemble's central interval at each level.

    The interval at level l spans the (1 - l)/2 and (1 + l)/2 empirical quantiles of the members (linear
    interpolation, numpy's default), bounds included. A calibrated forecast covers at the nominal rate l."""
    samples, y = _check_ensemble(samples, y, joint=False)
    out: dict[float, float] = {}
    for level in levels:
        if not 0.0 < level < 1.0:
            raise ValueError(f"coverage level must be in (0, 1), got {level}")
        lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=1)  # (n,) each
        out[float(level)] = float(((y >= lo) & (y <= hi)).mean())
    return out
