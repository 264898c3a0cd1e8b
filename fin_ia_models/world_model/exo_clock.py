"""Exo-clock (v6): the SSM step size Δ is modulated by exogenous market activity so the model's clock speeds up in
liquidity shocks.

Mamba's Δ_t is a learned, input-dependent "time step" (Gu & Dao 2023, "Mamba"; Dao & Gu 2024, Mamba-2): a large Δ
forgets the old state faster and weighs the new input more. Here Δ also depends on exogenous signals z_t — the
causal trailing z-scores of log realized volatility and log volume of the candles in the token's patch (built by
``exo_signals.exo_from_candles``) — with the exact formula, per token t and head h::

    dt'_{t,h} = clamp( dt_{t,h} · exp( Σ_k softplus(w_{k,h}) · clip(z_{t,k}, -z_clip, z_clip) ), dt_limit )

where dt_{t,h} = softplus(raw_{t,h} + dt_bias_h) is Mamba's usual step and w (n_signals, nheads) are learned. The
softplus keeps every sensitivity > 0, so dt' is strictly increasing in each z (higher vol / volume → faster clock)
whatever training does; z = 0 (an average market) leaves dt unchanged. ``ExoClockConfig.enabled = False`` builds no
parameters and the mixer ignores z: exactly the v1 block.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fin_ia_models.world_model.config import ExoClockConfig


class ExoClock(nn.Module):
    """Multiplicative Δ modulation: (dt (b, l, h), z (b, l, k)) → dt' (b, l, h), before the dt_limit clamp."""

    def __init__(self, nheads: int, config: ExoClockConfig) -> None:
        super().__init__()
        self.config = config
        init = math.log(math.expm1(config.weight_init))  # inverse softplus, so softplus(w) == weight_init at start
        self.w = nn.Parameter(torch.full((config.n_signals, nheads), init))  # (k, h)

    def sensitivity(self) -> torch.Tensor:
        """softplus(w): (k, h), all > 0."""
        return F.softplus(self.w)

    def forward(self, dt: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 3 or z.shape[:2] != dt.shape[:2] or z.shape[-1] != self.config.n_signals:
            raise ValueError(
                f"exo z must be (batch, length, {self.config.n_signals}) aligned with dt {tuple(dt.shape)}, "
                f"got {tuple(z.shape)}"
            )
        zc = z.to(dt.dtype).clamp(-self.config.z_clip, self.config.z_clip)  # (b, l, k)
        return dt * torch.exp(zc @ self.sensitivity().to(dt.dtype))  # (b, l, h)
