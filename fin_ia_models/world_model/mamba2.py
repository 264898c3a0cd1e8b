"""Mamba-2 mixer (SSD layer) in pure PyTorch, with an optional exo-clock and an O(1)-state step mode.

Dao & Gu 2024, "Transformers are SSMs" (arXiv:2405.21060); layout follows ``mamba_ssm.modules.mamba2.Mamba2``:
in_proj → [z | xBC | dt]; depthwise causal conv1d + SiLU on xBC; dt = clamp(softplus(dt + dt_bias)) (optionally
exo-clocked, see ``exo_clock.py``); A = -exp(A_log) per head; SSD scan with grouped B/C; D skip; gated RMSNorm
y = RMSNorm(y · SiLU(z)); out_proj. The scan is ``ssd.ssd_chunked`` everywhere, except on CUDA tensors when
``mamba_ssm`` is importable: then mamba-ssm's fused ``mamba_chunk_scan_combined`` runs on the same parameters.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fin_ia_models.world_model.config import Mamba2Config
from fin_ia_models.world_model.exo_clock import ExoClock
from fin_ia_models.world_model.ssd import ssd_chunked, ssd_step

log = logging.getLogger("fin_ia.world_model")
_FUSED: dict[str, object] = {}  # "fn": the fused scan or None, resolved and logged once per process


def _fused_scan(device: torch.device):
    """mamba-ssm's fused chunked scan for CUDA tensors if importable, else None; the choice is logged once."""
    if device.type != "cuda":
        return None
    if "fn" not in _FUSED:
        try:
            from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
        except ImportError as err:
            _FUSED["fn"] = None
            log.info("SSD scan: pure-PyTorch chunked (mamba_ssm not importable: %s)", err)
        else:
            _FUSED["fn"] = mamba_chunk_scan_combined
            log.info("SSD scan: mamba_ssm fused mamba_chunk_scan_combined on CUDA")
    return _FUSED["fn"]


@dataclass
class MixerState:
    """Recurrent state of one mixer for step mode: O(1) in sequence length."""

    conv: torch.Tensor  # (b, conv_dim, d_conv): last d_conv inputs of the causal conv (oldest first)
    ssm: torch.Tensor  # (b, nheads, headdim, d_state)


class GatedRMSNorm(nn.Module):
    """RMSNorm(y · SiLU(z)) · weight, normalised per group of d_inner / ngroups channels (mamba_ssm's RMSNormGated
    with norm_before_gate=False)."""

    def __init__(self, d: int, ngroups: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.ngroups, self.eps = ngroups, eps

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        y = y * F.silu(z)
        shape = y.shape
        yg = y.reshape(*shape[:-1], self.ngroups, shape[-1] // self.ngroups)  # (..., g, d/g)
        yg = yg * torch.rsqrt(yg.pow(2).mean(-1, keepdim=True) + self.eps)
        return yg.reshape(shape) * self.weight


class Mamba2Mixer(nn.Module):
    """(b, l, d_model) → (b, l, d_model). ``exo`` (b, l, n_signals) is used only when the exo-clock is enabled."""

    def __init__(self, config: Mamba2Config) -> None:
        super().__init__()
        self.config = c = config
        self.conv_dim = c.d_inner + 2 * c.ngroups * c.d_state
        self.in_proj = nn.Linear(c.d_model, 2 * c.d_inner + 2 * c.ngroups * c.d_state + c.nheads, bias=False)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, c.d_conv, groups=self.conv_dim, padding=c.d_conv - 1)
        # dt_bias so that softplus(dt_bias) is log-uniform in [dt_min, dt_max] (Mamba's init)
        dt = torch.exp(torch.rand(c.nheads) * (math.log(c.dt_max) - math.log(c.dt_min)) + math.log(c.dt_min))
        dt = dt.clamp(min=c.dt_init_floor)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log = nn.Parameter(torch.log(torch.empty(c.nheads).uniform_(*c.A_init_range)))
        self.D = nn.Parameter(torch.ones(c.nheads))
        self.norm = GatedRMSNorm(c.d_inner, c.ngroups)
        self.out_proj = nn.Linear(c.d_inner, c.d_model, bias=False)
        self.exo_clock = ExoClock(c.nheads, c.exo) if c.exo.enabled else None

    def _split(self, zxbcdt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.config
        return torch.split(zxbcdt, [c.d_inner, self.conv_dim, c.nheads], dim=-1)  # z, xBC, dt_raw

    def _dt(self, dt_raw: torch.Tensor, exo: torch.Tensor | None) -> torch.Tensor:
        """(b, l, h) raw → clamp(softplus(raw + dt_bias) [· exo-clock], dt_limit)."""
        dt = F.softplus(dt_raw + self.dt_bias)
        if self.exo_clock is not None:
            if exo is None:
                raise ValueError("the exo-clock is enabled: pass exo (batch, length, n_signals) z-scores")
            dt = self.exo_clock(dt, exo)
        return dt.clamp(*self.config.dt_limit)

    def _ssm_inputs(self, xBC: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.config
        x, B, C = torch.split(xBC, [c.d_inner, c.ngroups * c.d_state, c.ngroups * c.d_state], dim=-1)
        lead = x.shape[:-1]
        return (
            x.reshape(*lead, c.nheads, c.headdim),  # (..., h, p)
            B.reshape(*lead, c.ngroups, c.d_state),  # (..., g, n)
            C.reshape(*lead, c.ngroups, c.d_state),  # (..., g, n)
        )

    def forward(
        self, u: torch.Tensor, exo: torch.Tensor | None = None, return_state: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, MixerState]:
        """u (b, l, d_model), exo (b, l, k) or None → y (b, l, d_model) [and the MixerState after the last token]."""
        c = self.config
        b, l, _ = u.shape
        z, xBC_in, dt_raw = self._split(self.in_proj(u))  # (b, l, d_inner), (b, l, conv_dim), (b, l, h)
        xBC = F.silu(self.conv1d(xBC_in.transpose(1, 2))[..., :l].transpose(1, 2))  # causal: crop the right pad
        x, B, C = self._ssm_inputs(xBC)  # (b, l, h, p), (b, l, g, n), (b, l, g, n)
        dt = self._dt(dt_raw, exo)  # (b, l, h)
        A = -torch.exp(self.A_log.float())  # (h,)
        fused = _fused_scan(u.device) if c.use_fused_kernel else None
        if fused is not None:
            y, ssm_state = fused(x, dt, A, B, C, c.chunk_size, return_final_states=True)
        else:  # the scan (cumsum of log-decays, exp) runs in fp32 even under bf16 autocast
            with torch.autocast(u.device.type, enabled=False):
                y, ssm_state = ssd_chunked(x.float(), dt.float(), A, B.float(), C.float(), c.chunk_size)
            y = y.to(x.dtype)
        y = y + x * self.D.to(x.dtype)[:, None]  # D skip, (b, l, h, p)
        out = self.out_proj(self.norm(y.reshape(b, l, c.d_inner), z))
        if not return_state:
            return out
        tail = xBC_in[:, -c.d_conv:].transpose(1, 2)  # (b, conv_dim, ≤ d_conv)
        conv_state = F.pad(tail, (c.d_conv - tail.shape[-1], 0))  # left-pad with zeros when l < d_conv
        return out, MixerState(conv=conv_state, ssm=ssm_state.to(u.dtype))

    def init_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
    ) -> MixerState:
        c = self.config
        return MixerState(
            conv=torch.zeros(batch, self.conv_dim, c.d_conv, device=device, dtype=dtype),
            ssm=torch.zeros(batch, c.nheads, c.headdim, c.d_state, device=device, dtype=dtype),
        )

    def step(
        self, u_t: torch.Tensor, state: MixerState, exo_t: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, MixerState]:
        """One token: u_t (b, d_model), exo_t (b, k) or None → (y_t (b, d_model), new state). Equals ``forward``."""
        c = self.config
        z, xBC_in, dt_raw = self._split(self.in_proj(u_t))  # (b, d_inner), (b, conv_dim), (b, h)
        conv = torch.cat([state.conv[..., 1:], xBC_in.unsqueeze(-1)], dim=-1)  # (b, conv_dim, d_conv)
        xBC = (conv * self.conv1d.weight.squeeze(1)).sum(-1)  # (b, conv_dim)
        if self.conv1d.bias is not None:
            xBC = xBC + self.conv1d.bias
        x, B, C = self._ssm_inputs(F.silu(xBC))  # (b, h, p), (b, g, n), (b, g, n)
        dt = self._dt(dt_raw.unsqueeze(1), None if exo_t is None else exo_t.unsqueeze(1)).squeeze(1)  # (b, h)
        A = -torch.exp(self.A_log.float()).to(x.dtype)
        y, ssm = ssd_step(x, dt, A, B, C, state.ssm)
        y = y + x * self.D[:, None]  # (b, h, p)
        out = self.out_proj(self.norm(y.reshape(-1, c.d_inner), z))
        return out, MixerState(conv=conv, ssm=ssm)
