"""v1 stochastic predictor: the state network conditioned on latent noise z ~ N(0, I), rolled out autoregressively.

At each future step k a fresh z_k drives the head: v_k = head(state_{k-1}, z_k), and v_k is fed back into the state.
N draws of (z_1..z_H) give N futures of the next H tokens (latent + scale, in standardized units). The model is an
implicit generative model (like a GAN generator, but trained with a proper scoring rule instead of a critic): the
loss is the fair energy score of the joint H-step path over K rolled-out samples per context, plus the fair CRPS of
each scale target (Gneiting & Raftery 2007). Why both: the energy score is strictly proper for the joint path, but in
~H·(D+2) dimensions it is dominated by the latent dimensions and weakly sensitive to the dispersion of any single
margin (Pinson & Tastu 2013); the scale targets decide the scored return and volatility, so their marginal CRPS is
added (a sum of proper scores is proper). The rollout during training is free-running (samples fed back), exactly
as at sampling time.
"""

from __future__ import annotations

import torch
from torch import nn

from fin_ia_models.multiverse.config import MultiverseConfig
from fin_ia_models.multiverse.losses import crps_fair, energy_score_fair
from fin_ia_models.multiverse.networks import StateNet, mlp


class StochasticPredictor(nn.Module):
    """Context (B, F) + noise (B, H, noise_dim) → standardized futures (B, H, d)."""

    def __init__(self, config: MultiverseConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.state = StateNet(c.context_dim, c.target_dim, c.hidden_dim, c.n_layers)
        self.head = mlp(c.hidden_dim + c.noise_dim, c.hidden_dim, c.target_dim, c.n_layers)

    @property
    def noise_dim(self) -> int:
        return self.config.noise_dim

    def rollout(self, context: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """context (M, F) standardized, noise (M, H, noise_dim) → futures (M, H, d), clipped to ±target_clip."""
        state = self.state.initial(context)  # (M, Hd)
        clip = self.config.target_clip
        steps = []
        for k in range(noise.shape[1]):
            v = self.head(torch.cat([state, noise[:, k]], dim=1)).clamp(-clip, clip)  # (M, d)
            steps.append(v)
            state = self.state.advance(state, v)
        return torch.stack(steps, dim=1)

    def loss(self, context: torch.Tensor, targets: torch.Tensor, scale_dims: slice) -> dict[str, torch.Tensor]:
        """context (B, F), targets (B, H, d), both standardized; K samples per context rolled out free-running."""
        b, h, d = targets.shape
        k = self.config.n_train_samples
        noise = torch.randn(b * k, h, self.noise_dim, device=context.device, dtype=context.dtype)
        samples = self.rollout(context.repeat_interleave(k, dim=0), noise).reshape(b, k, h, d)  # (B, K, H, d)
        energy = energy_score_fair(samples.reshape(b, k, h * d), targets.reshape(b, h * d)).mean()
        scale_samples = samples[..., scale_dims].reshape(b, k, -1)  # (B, K, H·2)
        crps = crps_fair(scale_samples, targets[..., scale_dims].reshape(b, -1)).sum(dim=1).mean()
        spread = samples.std(dim=1).mean()  # mean sample std per dim: shows collapse (→ 0) while training
        return {"loss": energy + self.config.crps_weight * crps, "energy": energy.detach(), "crps": crps.detach(),
                "spread": spread.detach()}

    def sample(self, context: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """context (M, F), noise (M, H, noise_dim) → futures (M, H, d) (standardized)."""
        return self.rollout(context, noise)
