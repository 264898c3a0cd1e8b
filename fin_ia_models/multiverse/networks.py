"""Building blocks shared by both predictors: MLPs, the recurrent state of an autoregressive rollout, and the time
features of the flow's velocity field.

The state network plays the role of the JEPA predictor's causal context in the rollout: it starts from the context
at token t (``initial``) and absorbs each emitted future token (``advance``, a GRU cell: Cho et al. 2014), so the
distribution of step k depends on the context and on steps 1..k-1 of the same future. It is a head on the frozen,
exported JEPA embedding (read through the ``jepa_embeddings`` contract), not the JEPA's own masked-prediction
predictor, which predicts target-encoder representations rather than Strate I latents.

Dims: B contexts (or B·N futures), F context features, Hd hidden width, d target width (latent + 2 scale targets).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def mlp(in_dim: int, hidden: int, out_dim: int, n_layers: int) -> nn.Sequential:
    """``n_layers`` (Linear → GELU) blocks of width ``hidden``, then a Linear to ``out_dim``."""
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), nn.GELU()]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class StateNet(nn.Module):
    """Context (B, F) → state (B, Hd); (state, emitted target (B, d)) → next state."""

    def __init__(self, context_dim: int, target_dim: int, hidden: int, n_layers: int) -> None:
        super().__init__()
        self.context = mlp(context_dim, hidden, hidden, n_layers)
        self.cell = nn.GRUCell(target_dim, hidden)

    def initial(self, context: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.context(context))  # (B, Hd), in the GRU's range

    def advance(self, state: torch.Tensor, emitted: torch.Tensor) -> torch.Tensor:
        return self.cell(emitted, state)  # (B, Hd)

    def teacher_forced(self, context: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """States before each of the H steps when the true targets (B, H, d) are fed back: (B, H, Hd)."""
        state = self.initial(context)
        states = [state]
        for k in range(targets.shape[1] - 1):
            state = self.advance(state, targets[:, k])
            states.append(state)
        return torch.stack(states, dim=1)


class TimeFeatures(nn.Module):
    """t ∈ [0, 1] → (sin, cos) of 2π·f·t for f = 1..n_freq, plus t itself: (M,) → (M, 2·n_freq + 1)."""

    def __init__(self, n_freq: int = 4) -> None:
        super().__init__()
        self.register_buffer("freq", 2 * math.pi * torch.arange(1, n_freq + 1, dtype=torch.float32),
                             persistent=False)

    @property
    def dim(self) -> int:
        return 2 * len(self.freq) + 1

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angle = t[:, None] * self.freq[None]  # (M, n_freq)
        return torch.cat([t[:, None], torch.sin(angle), torch.cos(angle)], dim=1)
