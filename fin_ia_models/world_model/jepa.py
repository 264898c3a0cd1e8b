"""Fin-JEPA: a Joint-Embedding Predictive Architecture over Strate I token streams, on Mamba-2 blocks.

I-JEPA (Assran et al. 2023, arXiv:2301.08243) in 1-D time: a context encoder sees the sequence with target blocks
replaced by a mask token; an EMA target encoder sees everything; a predictor maps the context representation at
each target position to the target encoder's (layer-normed) representation there. Both encoders and the predictor
are causal Mamba-2 stacks, so a prediction at t uses only context positions <= t (a forecast in representation
space) and the context encoder's output at t — the exported embedding — depends only on tokens <= t.
Loss: smooth-L1 + ``vicreg_weight`` · (VICReg(pred, target) + variance/covariance of the context embeddings), the
last term guarding the exported embedding directly against collapse.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from fin_ia_models.world_model.config import JEPAConfig, Mamba2Config
from fin_ia_models.world_model.mamba2 import Mamba2Mixer, MixerState
from fin_ia_models.world_model.vicreg import covariance_loss, variance_loss, vicreg_loss


def ema_momentum(step: int, total_steps: int, start: float = 0.996, end: float = 1.0) -> float:
    """I-JEPA's linear momentum schedule: ``start`` at step 0, ``end`` at ``total_steps`` (and after)."""
    if total_steps < 1 or step < 0:
        raise ValueError(f"need total_steps >= 1 and step >= 0, got {total_steps}, {step}")
    return start + (end - start) * min(step, total_steps) / total_steps


class MambaStack(nn.Module):
    """Pre-norm residual Mamba-2 blocks + final RMSNorm: (b, l, d) → (b, l, d)."""

    def __init__(self, config: Mamba2Config, n_layers: int) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.RMSNorm(config.d_model) for _ in range(n_layers))
        self.mixers = nn.ModuleList(Mamba2Mixer(config) for _ in range(n_layers))
        self.final_norm = nn.RMSNorm(config.d_model)

    def forward(self, h: torch.Tensor, exo: torch.Tensor | None = None) -> torch.Tensor:
        for norm, mixer in zip(self.norms, self.mixers):
            h = h + mixer(norm(h), exo)
        return self.final_norm(h)

    def init_state(self, batch: int, device: torch.device | None = None) -> list[MixerState]:
        return [m.init_state(batch, device) for m in self.mixers]

    def step(
        self, h_t: torch.Tensor, states: list[MixerState], exo_t: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[MixerState]]:
        """One token: h_t (b, d) → (b, d) with O(1) recurrent states; equals ``forward`` at that position."""
        new = []
        for norm, mixer, state in zip(self.norms, self.mixers, states):
            y, st = mixer.step(norm(h_t), state, exo_t)
            h_t = h_t + y
            new.append(st)
        return self.final_norm(h_t), new


N_SCALE_INPUTS = 4  # exo_signals.EXO_COLUMNS + SCALE_COLUMNS: what the embedding reads when config.scale_inputs
N_SCALE_TARGETS = 2  # the last two of them (SCALE_COLUMNS: scale_ret, scale_volume): config.scale_target_weight


def _clock(exo: torch.Tensor | None, config: JEPAConfig) -> torch.Tensor | None:
    """The exo-clock's signals: the first ``n_signals`` exo columns (None when the clock is off)."""
    if exo is None or not config.mixer.exo.enabled:
        return None
    return exo[..., : config.mixer.exo.n_signals]


class ContextEncoder(nn.Module):
    """Token embedding (+ projected continuous latents, + projected scale inputs) → Mamba-2 stack. Causal.

    With ``config.scale_inputs`` the exo tensor's columns (the exo z-scores and the patch's log σ and relative volume,
    ``exo_signals.py``) are added to the token embedding through a linear map (``scale_hidden`` 0) or a GELU MLP: they
    are the scale RevIN removes, and each is computed from the token's own patch and earlier candles, so causality is
    unchanged. The MLP matters because the stack's RMSNorms keep a linear 4-vector's direction, not its magnitude."""

    def __init__(self, config: JEPAConfig) -> None:
        super().__init__()
        d = config.mixer.d_model
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, d)
        # std 0.02 (GPT-2/I-JEPA's init) instead of N(0, 1): the token vector must not drown the scale inputs,
        # which enter at the same (small) init scale
        nn.init.normal_(self.embed.weight, std=0.02)
        self.latent_proj = nn.Linear(config.n_latent, d) if config.n_latent > 0 else None
        self.scale_proj = None
        if config.scale_inputs:
            if config.scale_hidden > 0:
                last = nn.Linear(config.scale_hidden, d)
                self.scale_proj = nn.Sequential(nn.Linear(N_SCALE_INPUTS, config.scale_hidden), nn.GELU(), last)
            else:
                last = self.scale_proj = nn.Linear(N_SCALE_INPUTS, d)
            nn.init.normal_(last.weight, std=0.02)
            nn.init.zeros_(last.bias)
        self.mask_token = nn.Parameter(torch.zeros(d))
        nn.init.normal_(self.mask_token, std=0.02)
        self.stack = MambaStack(config.mixer, config.n_layers)

    def forward(
        self,
        tokens: torch.Tensor,
        latents: torch.Tensor | None = None,
        exo: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """tokens (b, l) int64, latents (b, l, n_latent), exo (b, l, k), mask (b, l) bool (True = hidden target)
        → (b, l, d)."""
        h = self.embed(tokens)  # (b, l, d)
        if self.latent_proj is not None:
            if latents is None:
                raise ValueError(f"config.n_latent = {self.config.n_latent}: pass latents (b, l, n_latent)")
            h = h + self.latent_proj(latents)
        h = self._add_scale(h, exo)
        if mask is not None:  # the mask token replaces the whole input, scale included
            h = torch.where(mask[..., None], self.mask_token.to(h.dtype), h)
            if exo is not None:  # a masked patch's volatility is target information: neutral clock there
                exo = exo.masked_fill(mask[..., None], 0.0)
        return self.stack(h, _clock(exo, self.config))

    def _add_scale(self, h: torch.Tensor, exo: torch.Tensor | None) -> torch.Tensor:
        if self.scale_proj is None:
            return h
        if exo is None or exo.shape[-1] != N_SCALE_INPUTS:
            raise ValueError(f"config.scale_inputs: pass exo (..., {N_SCALE_INPUTS}) = exo z-scores + scale columns, "
                             f"got {None if exo is None else tuple(exo.shape)}")
        return h + self.scale_proj(exo.to(h.dtype))

    def step(
        self,
        token: torch.Tensor,
        states: list[MixerState],
        latent: torch.Tensor | None = None,
        exo: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[MixerState]]:
        """Streaming inference, one new token: token (b,) int64, latent (b, n_latent), exo (b, k) → ((b, d), states).
        Start from ``self.stack.init_state(b)``."""
        h = self.embed(token)  # (b, d)
        if self.latent_proj is not None:
            if latent is None:
                raise ValueError(f"config.n_latent = {self.config.n_latent}: pass latent (b, n_latent)")
            h = h + self.latent_proj(latent)
        h = self._add_scale(h, exo)
        return self.stack.step(h, states, _clock(exo, self.config))


class Predictor(nn.Module):
    """Causal predictor: context representation (+ a learned query at target positions) → predicted target."""

    def __init__(self, config: JEPAConfig) -> None:
        super().__init__()
        d = config.mixer.d_model
        self.query = nn.Parameter(torch.zeros(d))
        nn.init.normal_(self.query, std=0.02)
        self.config = config
        self.stack = MambaStack(config.mixer, config.predictor_layers)
        self.head = nn.Linear(d, d)
        # the masked tokens' scale inputs (config.scale_target_weight), from the same hidden state
        self.scale_head = nn.Linear(d, N_SCALE_TARGETS) if config.scale_target_weight > 0 else None

    def hidden(self, ctx: torch.Tensor, mask: torch.Tensor, exo: torch.Tensor | None = None) -> torch.Tensor:
        """ctx (b, l, d), mask (b, l) → the predictor's last hidden state (b, l, d); a target's exo is hidden."""
        h = ctx + mask[..., None].to(ctx.dtype) * self.query
        if exo is not None:
            exo = exo.masked_fill(mask[..., None], 0.0)
        return self.stack(h, _clock(exo, self.config))

    def forward(self, ctx: torch.Tensor, mask: torch.Tensor, exo: torch.Tensor | None = None) -> torch.Tensor:
        """ctx (b, l, d), mask (b, l) → (b, l, d) (only target positions are used by the loss)."""
        return self.head(self.hidden(ctx, mask, exo))


class FinJEPA(nn.Module):
    """Context encoder, EMA target encoder (no gradients) and predictor."""

    def __init__(self, config: JEPAConfig) -> None:
        super().__init__()
        self.config = config
        self.context_encoder = ContextEncoder(config)
        self.target_encoder = copy.deepcopy(self.context_encoder)
        self.target_encoder.requires_grad_(False)
        self.predictor = Predictor(config)

    @torch.no_grad()
    def ema_update(self, momentum: float) -> None:
        """target ← m·target + (1 − m)·context."""
        for t, c in zip(self.target_encoder.parameters(), self.context_encoder.parameters()):
            t.lerp_(c.detach(), 1.0 - momentum)

    def loss(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        latents: torch.Tensor | None = None,
        exo: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """JEPA loss on a batch; mask (b, l) True at targets. Returns the total and its terms (for logging)."""
        if not mask.any():
            raise ValueError("mask selects no target position")
        cfg = self.config
        with torch.no_grad():
            tgt = self.target_encoder(tokens, latents, exo).float()  # (b, l, d), full view
            if cfg.target_layer_norm:
                tgt = F.layer_norm(tgt, tgt.shape[-1:])
        ctx = self.context_encoder(tokens, latents, exo, mask)  # (b, l, d)
        hidden = self.predictor.hidden(ctx, mask, exo)
        pred = self.predictor.head(hidden).float()  # (b, l, d)
        p, t = pred[mask], tgt[mask]  # (n_targets, d)
        jepa = F.smooth_l1_loss(p, t)
        vic = vicreg_loss(p, t, cfg.vicreg_sim, cfg.vicreg_std, cfg.vicreg_cov)
        c = ctx.float().reshape(-1, ctx.shape[-1])  # (b·l, d)
        ctx_reg = cfg.vicreg_std * variance_loss(c) + cfg.vicreg_cov * covariance_loss(c)
        total = jepa + cfg.vicreg_weight * (vic.total + ctx_reg)
        out = {"jepa": jepa.detach(), "vic_inv": vic.invariance.detach(), "vic_var": vic.variance.detach(),
               "vic_cov": vic.covariance.detach(), "ctx_reg": ctx_reg.detach(), "ctx_embeddings": ctx.detach()}
        if self.predictor.scale_head is not None:  # the masked tokens' own scale inputs, never seen by ctx or pred
            scale = F.smooth_l1_loss(self.predictor.scale_head(hidden).float()[mask],
                                     exo[..., -N_SCALE_TARGETS:].float()[mask])
            total = total + cfg.scale_target_weight * scale
            out["scale_target"] = scale.detach()
        return {"loss": total, **out}
