"""Collapse monitors for self-supervised embeddings: per-dimension std and effective rank.

Effective rank (Roy & Vetterli 2007): exp of the Shannon entropy of the normalised singular values of the centred
embedding matrix; it is d for perfectly isotropic embeddings and 1 when all variance lies on one direction (used as a
collapse diagnostic in RankMe, Garrido et al. 2023).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CollapseStats:
    std_min: float  # smallest per-dimension std (0 = a dead dimension)
    std_mean: float  # mean per-dimension std
    effective_rank: float  # in [1, d]
    dim: int  # d

    def as_dict(self) -> dict[str, float]:
        return {"std_min": self.std_min, "std_mean": self.std_mean, "effective_rank": self.effective_rank,
                "dim": float(self.dim)}


def effective_rank(emb: torch.Tensor, eps: float = 1e-12) -> float:
    """exp(H(p)), p = σ / Σσ over the singular values σ of the centred (n, d) matrix."""
    if emb.dim() != 2 or emb.shape[0] < 2:
        raise ValueError(f"effective_rank needs (n >= 2, d) embeddings, got {tuple(emb.shape)}")
    x = emb.double() - emb.double().mean(dim=0)
    s = torch.linalg.svdvals(x)
    if s.sum() <= eps:
        return 1.0  # all rows identical: fully collapsed
    p = s / s.sum()
    entropy = -(p * torch.log(p.clamp_min(eps))).sum()
    return float(torch.exp(entropy))


def collapse_stats(emb: torch.Tensor) -> CollapseStats:
    """Stats of (n, d) embeddings (any leading dims are flattened)."""
    emb = emb.detach().reshape(-1, emb.shape[-1]).float()
    std = emb.std(dim=0)
    return CollapseStats(float(std.min()), float(std.mean()), effective_rank(emb), emb.shape[-1])
