"""``MultiverseModel``: Strate III behind one interface for both predictors (v1 stochastic, v6 OT-CFM flow).

``sample(end_timestamp, features, n_futures, horizon, seed) -> Trajectories``: for each origin token, N futures of
the next H tokens in Strate I's space (latent + patch scale), mapped back to token ids and candle returns by a frozen
copy of the tokenizer the multiverse was trained with (``decode.py``). The tokenizer's weights are part of this
model's state, so a stored multiverse always decodes with exactly its own tokenizer.

Reproducibility and causality of sampling: the noise of origin t is drawn from a generator seeded by (seed,
end_timestamp of t) alone, so a future depends only on its own context row and the seed — not on which other rows
are in the batch, and not on anything after t. Same seed → same futures, bit for bit on CPU.

Standardization: context features and targets are standardized with statistics of the training rows (buffers, so
they travel in the checkpoint); predictors work in standardized units.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fin_ia_models.multiverse.config import MultiverseConfig
from fin_ia_models.multiverse.decode import decode_futures
from fin_ia_models.multiverse.flow import FlowPredictor
from fin_ia_models.multiverse.stochastic import StochasticPredictor
from fin_ia_models.multiverse.trajectories import Trajectories
from fin_ia_models.tokenizer.model import TokenizerModel

SAMPLE_CHUNK = 8192  # futures (rows × N) per forward pass when sampling: bounds memory for any number of rows


def row_noise(seed: int, end_timestamp: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(B, *shape) float32 standard normals; row i from ``np.random.default_rng([seed, end_timestamp[i]])``."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    out = np.empty((len(end_timestamp), *shape), np.float32)
    for i, stamp in enumerate(np.asarray(end_timestamp, np.int64)):
        out[i] = np.random.default_rng([int(seed), int(stamp)]).standard_normal(shape, dtype=np.float32)
    return out


class MultiverseModel(nn.Module):
    """Context features (B, F) → N futures of H tokens (see the module docstring)."""

    def __init__(self, config: MultiverseConfig) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = TokenizerModel(config.tokenizer).requires_grad_(False).eval()
        predictor = StochasticPredictor if config.predictor == "stochastic" else FlowPredictor
        self.predictor = predictor(config)
        self.register_buffer("context_mean", torch.zeros(config.context_dim))
        self.register_buffer("context_std", torch.ones(config.context_dim))
        self.register_buffer("target_mean", torch.zeros(config.target_dim))
        self.register_buffer("target_std", torch.ones(config.target_dim))

    @property
    def scale_dims(self) -> slice:
        """Where the two scale targets (log σ, μ/σ) sit in a target vector."""
        return slice(self.config.latent_dim, self.config.target_dim)

    def train(self, mode: bool = True) -> "MultiverseModel":
        super().train(mode)
        self.tokenizer.eval()  # frozen: a VQ codebook must never update from the multiverse's training
        return self

    def load_tokenizer(self, tokenizer: TokenizerModel) -> None:
        """Copy the weights of the tokenizer this multiverse decodes with (its config must be the one configured)."""
        if tokenizer.config != self.config.tokenizer:
            raise ValueError("the tokenizer's config differs from the one this multiverse was configured with")
        self.tokenizer.load_state_dict(tokenizer.state_dict())

    @torch.no_grad()
    def fit_normalization(self, features: np.ndarray, targets: np.ndarray) -> None:
        """Standardization statistics from the training rows: features (n, F), targets (n, H, d)."""
        for name, values in (("context", features), ("target", targets.reshape(-1, targets.shape[-1]))):
            values = torch.as_tensor(np.asarray(values, np.float64))
            std = values.std(dim=0)
            getattr(self, f"{name}_mean").copy_(values.mean(dim=0))
            getattr(self, f"{name}_std").copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    def standardize(self, features: torch.Tensor, targets: torch.Tensor | None = None):
        context = (features - self.context_mean) / self.context_std
        if targets is None:
            return context
        return context, (targets - self.target_mean) / self.target_std

    def loss(self, features: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw features (B, F) and targets (B, H, d) → the predictor's loss terms."""
        context, standardized = self.standardize(features, targets)
        return self.predictor.loss(context, standardized, self.scale_dims)

    def _check(self, end_timestamp: np.ndarray, features: np.ndarray, n_futures: int, horizon: int) -> None:
        for name, value in (("n_futures", n_futures), ("horizon", horizon)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if features.ndim != 2 or features.shape[1] != self.config.context_dim:
            raise ValueError(f"context features must have shape (B, {self.config.context_dim}), got "
                             f"{features.shape}")
        if len(end_timestamp) != len(features) or len(features) == 0:
            raise ValueError(f"need one end_timestamp per context row and at least one row, got "
                             f"{len(end_timestamp)} stamps for {len(features)} rows")
        bad = ~np.isfinite(features)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise ValueError(f"context features hold {int(bad.sum())} NaN/inf values, the first in the row ending "
                             f"at {int(end_timestamp[row])}")

    @torch.no_grad()
    def sample(self, end_timestamp: np.ndarray, features: np.ndarray, n_futures: int, horizon: int, seed: int,
               solver: str | None = None, steps: int | None = None) -> Trajectories:
        """N futures of H tokens for each context row (features (B, F) raw, end_timestamp (B,) int64).

        ``solver``/``steps`` override the flow's ODE solver (ignored by the stochastic predictor)."""
        end_timestamp = np.asarray(end_timestamp, np.int64)
        features = np.asarray(features, np.float32)
        self._check(end_timestamp, features, n_futures, horizon)
        was_training = self.training
        self.eval()
        try:
            c = self.config
            noise = row_noise(seed, end_timestamp, (n_futures, horizon, self.predictor.noise_dim))  # (B, N, H, nd)
            rows_per_chunk = max(1, SAMPLE_CHUNK // n_futures)
            parts = []
            for start in range(0, len(features), rows_per_chunk):
                x = torch.as_tensor(features[start:start + rows_per_chunk])
                b = len(x)
                context = self.standardize(x).repeat_interleave(n_futures, dim=0)  # (b·N, F)
                z = torch.as_tensor(noise[start:start + b]).reshape(b * n_futures, horizon, -1)
                if c.predictor == "flow":
                    v = self.predictor.sample(context, z, solver, steps)
                else:
                    v = self.predictor.sample(context, z)
                v = v * self.target_std + self.target_mean  # (b·N, H, d) in target units
                flat = v.reshape(-1, c.target_dim)
                ids, returns = decode_futures(self.tokenizer, flat[:, : c.latent_dim], flat[:, self.scale_dims])
                parts.append((ids.reshape(b, n_futures, horizon), v.reshape(b, n_futures, horizon, -1).numpy(),
                              returns.reshape(b, n_futures, -1)))
        finally:
            self.train(was_training)
        ids, v, returns = (np.concatenate(p) for p in zip(*parts))
        return Trajectories(end_timestamp, ids, v[..., : c.latent_dim].astype(np.float32),
                            v[..., c.latent_dim:].astype(np.float32), returns, c.tokenizer.patch_len)
