"""SymLog + finite scalar quantization (the tokenizer's "v6" quantizer).

FSQ: Mentzer, Minnen, Agustsson, Tschannen 2023, "Finite Scalar Quantization: VQ-VAE Made Simple" (ICLR 2024). Each of
``len(levels)`` channels is bounded to ``levels[i]`` values and rounded with a straight-through gradient; the implicit
codebook is their product grid (size = prod(levels)); no codebook is learned, so no code can die.
SymLog (Hafner et al. 2023, DreamerV3): symlog(x) = sign(x)·log(1+|x|) compresses fat-tailed latents before the
bounding tanh, so a shock of 10 σ lands near the grid edge instead of saturating it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x)·log(1 + |x|)."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    """Inverse of ``symlog``: sign(x)·(exp(|x|) − 1)."""
    return torch.sign(x) * torch.expm1(torch.abs(x))


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round with a straight-through (identity) gradient."""
    return x + (torch.round(x) - x).detach()


class FSQ(nn.Module):
    """Projects a latent (B, D) to ``len(levels)`` channels, quantizes, and projects back to D."""

    def __init__(self, levels: tuple[int, ...], dim: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.levels_list = tuple(int(level) for level in levels)
        self.codebook_size = math.prod(self.levels_list)
        self.eps = eps
        levels_t = torch.tensor(self.levels_list, dtype=torch.float64)
        basis = torch.cumprod(torch.tensor((1,) + self.levels_list[:-1], dtype=torch.int64), dim=0)
        self.register_buffer("_levels", levels_t.float(), persistent=False)  # (K,)
        self.register_buffer("_basis", basis, persistent=False)  # (K,) mixed-radix place values
        self.register_buffer("_half_width", (levels_t // 2).float(), persistent=False)  # (K,)
        self.project_in = nn.Linear(dim, len(self.levels_list))
        self.project_out = nn.Linear(len(self.levels_list), dim)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Map (…, K) to the open interval that rounds to ``levels`` integers (paper, appendix A.1).

        Even levels get a half-step offset so that rounding gives exactly L values (e.g. L=4 → {-2,-1,0,1}).
        """
        half_l = (self._levels - 1) * (1 + self.eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Pre-quantization channels (…, K) → codes in [-1, 1] (…, K) with straight-through rounding."""
        return round_ste(self.bound(symlog(z))) / self._half_width

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (…, K) in [-1, 1] → int64 indices (…) in [0, prod(levels))."""
        digits = torch.round(codes * self._half_width + self._half_width).to(torch.int64)  # (…, K) in [0, L_i)
        return (digits * self._basis).sum(dim=-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """int64 indices (…) → codes (…, K) in [-1, 1]."""
        digits = (indices[..., None] // self._basis) % self._levels.to(torch.int64)  # (…, K)
        return (digits.float() - self._half_width) / self._half_width

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Latent (B, D) → (quantized latent (B, D), indices (B,), auxiliary loss = 0: FSQ needs no commitment)."""
        # fp32 even under bf16 autocast: bf16 has too few mantissa bits to round near level boundaries consistently
        with torch.autocast(device_type=z.device.type, enabled=False):
            codes = self.quantize(self.project_in(z.float()))  # (B, K)
            indices = self.codes_to_indices(codes.detach())
            return self.project_out(codes), indices, codes.new_zeros(())

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Indices (B,) → quantized latent (B, D)."""
        return self.project_out(self.indices_to_codes(indices))
