"""Reversible instance normalization (Kim et al. 2022, "Reversible Instance Normalization for Accurate Time-Series
Forecasting against Distribution Shift", ICLR).

Each patch is normalized by its own per-channel mean and standard deviation (plus a learnable affine map); the
statistics are returned so the decoder output can be mapped back to the original units exactly.
"""

from __future__ import annotations

import torch
from torch import nn


class RevIN(nn.Module):
    """``normalize`` returns ``(x_norm, stats)``; ``denormalize(x_norm, stats)`` undoes it."""

    def __init__(self, n_features: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.affine = affine
        self.weight = nn.Parameter(torch.ones(n_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(n_features)) if affine else None

    def normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x``: (B, L, C) → normalized (B, L, C) and stats (mean, std), each (B, 1, C)."""
        mean = x.mean(dim=1, keepdim=True)  # (B, 1, C)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps)  # (B, 1, C)
        y = (x - mean) / std
        if self.affine:
            y = y * self.weight + self.bias
        return y, (mean, std)

    def denormalize(self, y: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Inverse of ``normalize``: (B, L, C) in normalized units → original units."""
        mean, std = stats
        if self.affine:
            # eps**2 keeps the division finite if a weight is driven to 0 (at the cost of an ~1e-10 relative error)
            y = (y - self.bias) / (self.weight + self.eps**2)
        return y * std + mean
