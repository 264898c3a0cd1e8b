"""Differentiable proper scoring rules of sample ensembles, the training loss of the v1 stochastic predictor.

Both are the "fair" (unbiased) estimators of Ferro 2014 over K samples per context, so the expected loss is
minimised exactly when the samples are drawn from the true conditional distribution (strict propriety; Gneiting &
Raftery 2007, section 4): a predictor that collapses its samples to the mean pays the full E|X - y| with no spread
credit, one that spreads too wide pays more distance than it earns back. A plain MSE on one sample would instead be
minimised by the conditional mean, i.e. by futures that do not diverge at all.

- Energy score (Gneiting et al. 2008, eq. 2) of the joint path: ``E||X - y|| - ½ E||X - X'||``, Euclidean norm over
  all (step, dim) entries, X and X' two different samples of the K (pairs i < j only: the norm of a zero vector has no
  gradient, and the fair estimator leaves the i = j terms out anyway).
- CRPS (Gneiting & Raftery 2007, eq. 21) of each marginal: ``E|X - y| - ½ E|X - X'|``.

The evaluation package (``fin_ia_models.evaluation.forecast_scores``) holds the numpy estimators these are tested
against (``fair=True``).
"""

from __future__ import annotations

import torch


def _check(samples: torch.Tensor, y: torch.Tensor) -> None:
    if samples.ndim != 3 or y.shape != (samples.shape[0], samples.shape[2]):
        raise ValueError(f"samples (B, K, P) and y (B, P) do not match: {tuple(samples.shape)} vs {tuple(y.shape)}")
    if samples.shape[1] < 2:
        raise ValueError(f"fair scores need K >= 2 samples per context, got {samples.shape[1]}")


def energy_score_fair(samples: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per context (B,): fair energy score of samples (B, K, P) for outcomes y (B, P)."""
    _check(samples, y)
    k = samples.shape[1]
    accuracy = torch.linalg.vector_norm(samples - y[:, None, :], dim=-1).mean(dim=1)  # (B,)
    i, j = torch.triu_indices(k, k, offset=1, device=samples.device)  # (2, K(K-1)/2) pairs i < j
    spread = torch.linalg.vector_norm(samples[:, i] - samples[:, j], dim=-1).sum(dim=1)  # (B,) Σ_{i<j}
    return accuracy - spread / (k * (k - 1))  # ½ · 2Σ_{i<j} / (K(K-1))


def crps_fair(samples: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per context and dimension (B, P): fair CRPS of each marginal of samples (B, K, P) for outcomes y (B, P)."""
    _check(samples, y)
    k = samples.shape[1]
    accuracy = (samples - y[:, None, :]).abs().mean(dim=1)  # (B, P)
    i, j = torch.triu_indices(k, k, offset=1, device=samples.device)
    spread = (samples[:, i] - samples[:, j]).abs().sum(dim=1)  # (B, P) Σ_{i<j}
    return accuracy - spread / (k * (k - 1))
