"""Causal dilated 1-D convolution encoder and its decoder (WaveNet-style stack, van den Oord et al. 2016;
TCN, Bai et al. 2018): left padding only, dilations 1, 2, 4, ...; the latent of a patch is read at its LAST position,
which sees the whole patch and nothing after it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalConvBlock(nn.Module):
    """Residual block: left-padded dilated conv → GELU → 1x1 conv, added to the input (no normalization layer:
    RevIN already scales every patch, and batch statistics would mix patches across time)."""

    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.left_pad = (kernel_size - 1) * dilation  # causal: output t depends on inputs <= t only
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, L) → (B, H, L)."""
        h = self.conv(F.pad(x, (self.left_pad, 0)))  # (B, H, L)
        return x + self.mix(F.gelu(h))


class CausalEncoder(nn.Module):
    """Patch (B, L, C) → latent (B, D)."""

    def __init__(self, n_features: int, hidden: int, latent: int, n_layers: int, kernel_size: int) -> None:
        super().__init__()
        self.inp = nn.Conv1d(n_features, hidden, 1)
        self.blocks = nn.Sequential(*[CausalConvBlock(hidden, kernel_size, 2**i) for i in range(n_layers)])
        self.out = nn.Linear(hidden, latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.inp(x.transpose(1, 2)))  # (B, H, L)
        return self.out(F.gelu(h[:, :, -1]))  # last position: sees the whole patch → (B, D)


class ConvDecoder(nn.Module):
    """Quantized latent (B, D) → reconstructed patch (B, L, C).

    The latent is broadcast over ``patch_len`` positions with a learned positional embedding and refined by the same
    dilated block type; causality is irrelevant here (the token exists only once its patch is complete).
    """

    def __init__(self, n_features: int, hidden: int, latent: int, n_layers: int, kernel_size: int,
                 patch_len: int) -> None:
        super().__init__()
        self.patch_len = patch_len
        self.inp = nn.Linear(latent, hidden)
        self.position = nn.Parameter(torch.randn(hidden, patch_len) * 0.02)  # (H, L)
        self.blocks = nn.Sequential(*[CausalConvBlock(hidden, kernel_size, 2**i) for i in range(n_layers)])
        self.out = nn.Conv1d(hidden, n_features, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.inp(z)[:, :, None] + self.position[None]  # (B, H, L)
        h = self.blocks(F.gelu(h))  # (B, H, L)
        return self.out(h).transpose(1, 2)  # (B, L, C)
