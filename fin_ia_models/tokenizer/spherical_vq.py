"""Spherical vector quantizer with an EMA codebook and dead-code revival (the tokenizer's "v1" quantizer).

- VQ-VAE and its EMA codebook update: van den Oord, Vinyals, Kavukcuoglu 2017, "Neural Discrete Representation
  Learning" (appendix A.1), with Laplace-smoothed cluster counts as in the Sonnet / lucidrains implementations.
- Latents and codes are L2-normalized and matched by cosine similarity (Yu et al. 2022, "Vector-quantized Image
  Modeling with Improved VQGAN"): on the sphere every code competes on direction only, which keeps usage spread.
- Dead-code revival (Dhariwal et al. 2020, Jukebox; Zeghidour et al. 2021, SoundStream): a code unused for
  ``dead_code_steps`` training steps is re-seeded with a random recent encoder output from a small ring buffer.

The codebook is NOT a parameter: it is updated by the EMA rule inside ``forward`` during training only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SphericalVQ(nn.Module):
    """Latent (B, D) → (straight-through quantized latent (B, D), indices (B,), commitment loss)."""

    def __init__(self, codebook_size: int, dim: int, decay: float = 0.99, eps: float = 1e-5,
                 dead_code_steps: int = 100, buffer_size: int = 4096, commitment_weight: float = 0.25) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.decay = decay
        self.eps = eps
        self.dead_code_steps = dead_code_steps
        self.commitment_weight = commitment_weight
        codebook = F.normalize(torch.randn(codebook_size, dim), dim=-1)
        self.register_buffer("codebook", codebook)  # (K, D) unit vectors
        self.register_buffer("ema_count", torch.ones(codebook_size))  # (K,) EMA of assignments per code
        self.register_buffer("ema_sum", codebook.clone())  # (K, D) EMA of the sum of assigned latents
        self.register_buffer("steps_unused", torch.zeros(codebook_size, dtype=torch.int64))  # (K,)
        self.register_buffer("revived_total", torch.zeros((), dtype=torch.int64))  # codes re-seeded so far
        self.register_buffer("buffer", torch.zeros(buffer_size, dim))  # (S, D) recent normalized latents
        self.register_buffer("buffer_filled", torch.zeros((), dtype=torch.int64))
        self.register_buffer("buffer_pos", torch.zeros((), dtype=torch.int64))

    def nearest(self, z_unit: torch.Tensor) -> torch.Tensor:
        """Unit latents (B, D) → index (B,) of the code with the highest cosine similarity."""
        return (z_unit @ self.codebook.t()).argmax(dim=-1)  # (B, K) → (B,)

    @torch.no_grad()
    def ema_update(self, z_unit: torch.Tensor, indices: torch.Tensor) -> None:
        """One EMA step of the codebook statistics from unit latents (B, D) assigned to ``indices`` (B,)."""
        onehot = F.one_hot(indices, self.codebook_size).type_as(z_unit)  # (B, K)
        counts = onehot.sum(dim=0)  # (K,)
        sums = onehot.t() @ z_unit  # (K, D)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.ema_count.sum()
        # Laplace smoothing keeps a never-used code from dividing by zero; on the sphere the renormalization then
        # removes the count's scale, so it does not bias directions
        smoothed = (self.ema_count + self.eps) / (total + self.codebook_size * self.eps) * total  # Laplace
        self.codebook.copy_(F.normalize(self.ema_sum / smoothed[:, None], dim=-1))
        used = counts > 0
        self.steps_unused.add_(1).masked_fill_(used, 0)

    @torch.no_grad()
    def remember(self, z_unit: torch.Tensor) -> None:
        """Push unit latents (B, D) into the ring buffer used for revival."""
        size = self.buffer.shape[0]
        z_unit = z_unit[-size:]
        positions = (self.buffer_pos + torch.arange(len(z_unit), device=z_unit.device)) % size
        self.buffer[positions] = z_unit
        self.buffer_pos.copy_((self.buffer_pos + len(z_unit)) % size)
        self.buffer_filled.copy_(torch.clamp(self.buffer_filled + len(z_unit), max=size))

    @torch.no_grad()
    def revive_dead_codes(self) -> int:
        """Re-seed codes unused for ``dead_code_steps`` steps from random buffered latents; returns how many."""
        dead = torch.nonzero(self.steps_unused >= self.dead_code_steps).flatten()
        filled = int(self.buffer_filled)
        if len(dead) == 0 or filled == 0:
            return 0
        # random choice through torch's global generator, which seed_everything seeds
        pick = torch.randint(0, filled, (len(dead),), device=self.buffer.device)
        fresh = self.buffer[pick]  # (n_dead, D)
        self.codebook[dead] = fresh
        self.ema_sum[dead] = fresh  # with ema_count = 1 the EMA mean is exactly the new code
        self.ema_count[dead] = 1.0
        self.steps_unused[dead] = 0
        self.revived_total.add_(len(dead))
        return len(dead)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # fp32 even under bf16 autocast: a bf16 cosine matmul would pick the wrong code among 1024 close ones
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self._forward_fp32(z.float())

    def _forward_fp32(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z_unit = F.normalize(z, dim=-1)  # (B, D)
        indices = self.nearest(z_unit.detach())  # (B,)
        if self.training:
            self.ema_update(z_unit.detach(), indices)
            self.remember(z_unit.detach())
            self.revive_dead_codes()
        quantized = self.codebook[indices]  # (B, D)
        commitment = self.commitment_weight * F.mse_loss(z_unit, quantized.detach())
        straight_through = z_unit + (quantized - z_unit).detach()
        return straight_through, indices, commitment

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Indices (B,) → code vectors (B, D)."""
        return self.codebook[indices]
