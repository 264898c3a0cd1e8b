"""VICReg: Variance-Invariance-Covariance Regularization (Bardes, Ponce & LeCun, ICLR 2022), eq. (1)-(6).

For two batches of embeddings a, b of shape (n, d)::

    invariance  s(a, b) = mean_i ||a_i - b_i||² / d                      (MSE)
    variance    v(a)    = mean_j max(0, γ - sqrt(Var(a_{:,j}) + ε))      γ = 1, ε = 1e-4, unbiased variance
    covariance  c(a)    = Σ_{j≠k} Cov(a)_{jk}² / d                       Cov = (a - ā)ᵀ(a - ā) / (n - 1)
    loss = λ·s(a, b) + μ·[v(a) + v(b)] / 2 + ν·[c(a) + c(b)] / 2          defaults λ = μ = 25, ν = 1

(The paper and the official repository SUM the covariance terms of the two branches, and the repository halves only
the variance term (``std_loss / 2``). Halving both here — each term averaged over the two branches, so its scale is
that of one branch — is this project's choice, pinned by ``test_vicreg_hand_computed``; with the default weights it
weighs the covariance term half as much as the official code does.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class VICRegTerms:
    invariance: torch.Tensor  # scalar, unweighted
    variance: torch.Tensor  # scalar, unweighted, averaged over the two branches
    covariance: torch.Tensor  # scalar, unweighted, averaged over the two branches
    total: torch.Tensor  # weighted sum


def variance_loss(a: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """Hinge on the per-dimension std of a (n, d)."""
    if a.dim() != 2 or a.shape[0] < 2:
        raise ValueError(f"variance_loss needs (n >= 2, d) embeddings, got {tuple(a.shape)}")
    std = torch.sqrt(a.var(dim=0) + eps)  # (d,)
    return F.relu(gamma - std).mean()


def covariance_loss(a: torch.Tensor) -> torch.Tensor:
    """Sum of squared off-diagonal covariances of a (n, d), divided by d."""
    if a.dim() != 2 or a.shape[0] < 2:
        raise ValueError(f"covariance_loss needs (n >= 2, d) embeddings, got {tuple(a.shape)}")
    n, d = a.shape
    ac = a - a.mean(dim=0)
    cov = ac.T @ ac / (n - 1)  # (d, d)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.pow(2).sum() / d


def vicreg_loss(
    a: torch.Tensor, b: torch.Tensor, sim_weight: float = 25.0, std_weight: float = 25.0, cov_weight: float = 1.0
) -> VICRegTerms:
    """VICReg between a and b, both (n, d)."""
    if a.shape != b.shape:
        raise ValueError(f"vicreg branches must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    inv = F.mse_loss(a, b)
    var = (variance_loss(a) + variance_loss(b)) / 2
    cov = (covariance_loss(a) + covariance_loss(b)) / 2
    return VICRegTerms(inv, var, cov, sim_weight * inv + std_weight * var + cov_weight * cov)
