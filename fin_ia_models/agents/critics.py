"""The planner's learned parts: an ensemble of quantile critics and a tanh-Gaussian policy prior.

Dims: B batch, S planner samples, E ensemble members, M quantiles, I input width (normalised features + position).

``QuantileCriticEnsemble``: E MLPs (Linear → LayerNorm → Mish per hidden layer, as TD-MPC2's), each mapping a
state s = (features_t, position held) to M quantiles of the discounted return from s (quantile regression,
Dabney et al. 2018, "Distributional RL with Quantile Regression", QR-DQN). The members' weights are stacked
(E, in, out) so one ``einsum`` evaluates the ensemble. The output layer starts at zero (as TD-MPC2's Q-heads), so an
untrained critic values every state at 0. ``forward_fixed_state`` is the planner's fast path: all S samples share
the features of step t and differ only in the position, so the first layer's feature part is computed once.
``forward`` is its reference (a test compares them).

``quantile_huber_loss``: QR-DQN eq. (10): for predicted quantiles θ_i at τ̂_i = (2i − 1) / 2M and target samples
T_j, Σ_i mean_j |τ̂_i − 1{u_ij < 0}| · L_κ(u_ij) / κ with u_ij = T_j − θ_i and the Huber loss L_κ. A per-element
loop (``quantile_huber_loss_ref``) is the reference.

``PolicyPrior``: π(a | s) = tanh(N(μ(s), σ(s)²)) with log σ squashed into [log_std_min, log_std_max] (TD-MPC2's).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def quantile_midpoints(m: int) -> torch.Tensor:
    """(M,) τ̂_i = (2i − 1) / 2M: the quantile levels the M outputs estimate."""
    return (2 * torch.arange(1, m + 1, dtype=torch.float32) - 1) / (2 * m)


def quantile_huber_loss(pred: torch.Tensor, target: torch.Tensor, kappa: float) -> torch.Tensor:
    """pred (B, M) quantiles, target (B, M') samples → scalar: Σ_i mean_j ρ^κ_τ̂i(T_j − θ_i), averaged over B."""
    tau = quantile_midpoints(pred.shape[-1]).to(pred)  # (M,)
    u = target[:, None, :] - pred[:, :, None]  # (B, M, M')
    huber = torch.where(u.abs() <= kappa, 0.5 * u**2, kappa * (u.abs() - 0.5 * kappa))
    weight = (tau[None, :, None] - (u.detach() < 0).to(pred)).abs()
    return (weight * huber / kappa).mean(-1).sum(-1).mean()


def quantile_huber_loss_ref(pred: list[list[float]], target: list[list[float]], kappa: float) -> float:
    """Plain-python reference of ``quantile_huber_loss`` (one element at a time)."""
    total = 0.0
    for theta, samples in zip(pred, target):
        m = len(theta)
        for i, q in enumerate(theta):
            tau = (2 * (i + 1) - 1) / (2 * m)
            row = 0.0
            for t in samples:
                u = t - q
                huber = 0.5 * u * u if abs(u) <= kappa else kappa * (abs(u) - 0.5 * kappa)
                row += abs(tau - (1.0 if u < 0 else 0.0)) * huber / kappa
            total += row / len(samples)
    return total / len(pred)


class QuantileCriticEnsemble(nn.Module):
    """E critics of ``in_dim`` inputs → M quantiles each (module docstring)."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], n_critics: int, n_quantiles: int) -> None:
        super().__init__()
        widths = [in_dim, *hidden, n_quantiles]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.norm_weights = nn.ParameterList()
        self.norm_biases = nn.ParameterList()
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            last = i == len(widths) - 2
            bound = 0.0 if last else 1.0 / math.sqrt(fan_in)  # nn.Linear's init; zero output layer (TD-MPC2)
            self.weights.append(nn.Parameter(torch.empty(n_critics, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n_critics, fan_out).uniform_(-bound, bound)))
            if not last:
                self.norm_weights.append(nn.Parameter(torch.ones(n_critics, fan_out)))
                self.norm_biases.append(nn.Parameter(torch.zeros(n_critics, fan_out)))
        self.in_dim, self.n_critics, self.n_quantiles = in_dim, n_critics, n_quantiles

    def _hidden(self, h: torch.Tensor, i: int) -> torch.Tensor:
        """LayerNorm (per member's affine) then Mish of a (E, B, width) pre-activation."""
        h = F.layer_norm(h, h.shape[-1:])
        return F.mish(h * self.norm_weights[i][:, None, :] + self.norm_biases[i][:, None, :])

    def _rest(self, h: torch.Tensor) -> torch.Tensor:
        """Layers 2.. of a (E, B, hidden_0) first-layer pre-activation → (E, B, M)."""
        h = self._hidden(h, 0)
        for i in range(1, len(self.weights)):
            h = torch.einsum("ebi,eio->ebo", h, self.weights[i]) + self.biases[i][:, None, :]
            if i < len(self.weights) - 1:
                h = self._hidden(h, i)
        return h

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """state (B, I) → quantiles (E, B, M)."""
        h = torch.einsum("bi,eio->ebo", state, self.weights[0]) + self.biases[0][:, None, :]  # (E, B, H0)
        return self._rest(h)

    def forward_fixed_state(self, features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """features (I − 1,) shared by all samples, positions (S,) → quantiles (E, S, M); = forward(cat(...))."""
        w = self.weights[0]  # (E, I, H0); the last input row multiplies the position
        shared = torch.einsum("i,eio->eo", features, w[:, :-1, :]) + self.biases[0]  # (E, H0)
        h = shared[:, None, :] + positions[None, :, None] * w[:, -1, None, :]  # (E, S, H0)
        return self._rest(h)


class PolicyPrior(nn.Module):
    """π(a | s): a tanh-squashed Gaussian over the target position (module docstring)."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], log_std_min: float, log_std_max: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip([in_dim, *hidden[:-1]], hidden):
            layers += [nn.Linear(fan_in, fan_out), nn.LayerNorm(fan_out), nn.Mish()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden[-1], 2)  # μ and the unsquashed log σ
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def distribution(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """state (B, I) → μ (B,), σ (B,) of the pre-tanh Gaussian."""
        mu, raw = self.head(self.body(state)).unbind(-1)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(raw) + 1)
        return mu, log_std.exp()

    def sample(self, state: torch.Tensor,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised a = tanh(μ + σ·ε) (B,) and its log density (B,) (with the tanh correction)."""
        mu, std = self.distribution(state)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        u = mu + std * eps
        action = torch.tanh(u)
        log_prob = (-0.5 * eps**2 - std.log() - 0.5 * math.log(2 * math.pi)
                    - torch.log(1 - action**2 + 1e-6))
        return action, log_prob
