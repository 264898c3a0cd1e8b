"""A TD-MPC2-style planner (Hansen, Su & Wang 2024, "TD-MPC2: Scalable, Robust World Models for Continuous Control",
arXiv:2310.16828, §3 and appendix H) whose world model is the multiverse and whose objective is the CVaR of returns.

At step t, holding position p₀, with S candidate position sequences a (S, h) over the next h tokens and the
multiverse's N sampled futures f (N, h) of per-step log returns (``mv_futures[t]``), the return of sequence s on
future n over the horizon is

    G_sn = Σ_k γ^k · step_reward(a_sk, a_s,k−1, f_nk)        (``rewards.py``: position × return − costs − risk)

and its score is CVaR_α over the N futures of G_s· (α = 5 %: the mean of the worst 5 % of the multiverse), plus the
γ^h-discounted CVaR_α of the terminal value distribution Z(x_t, a_s,h−1): the ensemble average of the quantile
critics' M quantiles. Adding the two CVaRs treats the continuation's bad outcomes as coinciding with the path's
(comonotonic): exact in that case and conservative otherwise (CVaR of returns is superadditive, CVaR(X + Y) ≥
CVaR(X) + CVaR(Y)), where scoring the N·M atoms of the mixture would assume them independent and cost M times more.
Given x_t the terminal value is a smooth function of one scalar, the terminal position, so it is evaluated once per
decision on ``value_grid`` positions and linearly interpolated (a test bounds the error).
MPPI refines a Gaussian over sequences with these scores.

Kept from TD-MPC2: MPPI with its defaults (horizon 3, 6 iterations, 512 samples, 64 elites, 24 policy-prior
trajectories, temperature 0.5, std in [0.05, 2]); elite scores exp(temperature·(v − v_max)) setting the next
mean/std; policy-prior trajectories mixed into every iteration's samples; the γ^h-discounted terminal value from an
ensemble of critics trained by TD learning on Polyak-averaged (τ = 0.01) targets, the min of two random target
members in the TD target; a tanh-Gaussian prior trained through the critic with an entropy bonus (1e-4).

Changed, and why:
- No learned latent dynamics, reward model, encoder or consistency loss: the market does not react to the agent
  (``env.py``), so the exogenous future is what the multiverse samples and the endogenous state (the position)
  evolves exactly; rewards and costs are computed, not predicted. The JEPA embedding is the given latent.
- Objective: CVaR_α of the return distribution instead of the expected return, so one bad tail across the futures
  outweighs a higher average (a risk budget TD-MPC2 does not have).
- Critics are distributional (QR-DQN quantiles, quantile Huber loss) instead of TD-MPC2's discrete-regression Q, so
  the terminal value has a tail to take the CVaR of; and they are state values V(x, p) of (features, position
  held), because an action's immediate effect is computed exactly; only what follows the horizon is learned.
  TD-MPC2 averages two random Q-heads for the terminal value; all members' quantiles are averaged here
  (deterministic).
- The terminal state's exogenous features are those of step t (x_t): the multiverse samples returns, not future
  embeddings. The terminal value thus prices the position left at the horizon given today's information.
- Values are scaled by ``score_scale`` (to basis points) before the temperature: log returns are ~1e-2 where
  TD-MPC2's rewards are O(1).
- Deterministic decisions: no warm start from the previous step's plan and no Gumbel sampling of the final elite
  (TD-MPC2 samples one); the decision is the score-weighted elite mean of the first action after the last
  iteration, and all sampling uses a generator seeded by (training seed, the row's end_timestamp). A decision is a
  pure function of (row, position held): the live path, the backtest and a restarted process agree exactly.
- Training is offline on the logged data: positions held are drawn uniformly in [−1, 1] for every transition (any
  position is a valid state of a market that does not react), instead of a replay buffer of the agent's own play.

``score_sequences`` is the vectorised scoring, ``score_sequences_ref`` its per-sample, per-future loop (tested
equal); ``plan_position`` runs MPPI; ``CVaRPlannerAgent`` bundles critics, prior and normaliser (a ``TradingAgent``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fin_ia_models.agents.critics import PolicyPrior, QuantileCriticEnsemble
from fin_ia_models.agents.cvar import cvar_lower, cvar_lower_np, cvar_lower_ref
from fin_ia_models.agents.data import AgentRow
from fin_ia_models.agents.features import ObsNormalizer
from fin_ia_models.agents.planner_config import CVaRPlannerConfig, PlannerSpec
from fin_ia_models.agents.rewards import step_reward
from fin_ia_models.utils.atomic import atomic_write_bytes

FORMAT = "fin-ia-checkpoint/1"  # the safetensors layout of fin_ia_models.training.checkpoint
KIND = "cvar_planner"


def terminal_cvar(critics: QuantileCriticEnsemble, features: torch.Tensor, positions: torch.Tensor,
                  planner: CVaRPlannerConfig) -> torch.Tensor:
    """CVaR_α (in return units) of the ensemble-averaged quantiles of V(x_t, p) for positions (G,) → (G,)."""
    quantiles = critics.forward_fixed_state(features, positions).mean(0)  # (G, M) ensemble average
    return cvar_lower(quantiles, planner.mppi.cvar_alpha) / planner.env.reward_scale


def score_sequences(actions: np.ndarray, position: float, futures: np.ndarray, terminal: np.ndarray,
                    planner: CVaRPlannerConfig) -> np.ndarray:
    """actions (S, h), futures (N, h), terminal CVaR values (S,), all float64 → scores (S,) (module docstring)."""
    h = actions.shape[1]
    env = planner.env
    discount = planner.discount ** np.arange(h)  # (h,)
    previous = np.concatenate([np.full((len(actions), 1), position), actions[:, :-1]], axis=1)  # (S, h)
    cost = env.cost_rate * (np.abs(actions - previous) @ discount)  # (S,)
    path = (actions * discount) @ futures.T  # (S, N)
    if env.risk_penalty > 0:  # Σ_k γ^k λ (a_k f_k)²
        path -= env.risk_penalty * ((actions**2 * discount) @ (futures**2).T)
    return cvar_lower_np(path, planner.mppi.cvar_alpha) - cost + planner.discount**h * terminal


def score_sequences_ref(actions: np.ndarray, position: float, futures: np.ndarray, terminal: np.ndarray,
                        planner: CVaRPlannerConfig) -> np.ndarray:
    """Reference of ``score_sequences``: each sequence stepped through each future with ``step_reward``."""
    env, gamma = planner.env, planner.discount
    scores = []
    for seq, tail in zip(actions, terminal):
        returns = []
        for future in futures:
            total, held = 0.0, position
            for k, (target, ret) in enumerate(zip(seq, future)):
                total += gamma**k * step_reward(target, held, ret, env.cost_rate, env.risk_penalty)
                held = target
            returns.append(total)
        scores.append(cvar_lower_ref(np.array(returns), planner.mppi.cvar_alpha) + gamma ** len(seq) * tail)
    return np.array(scores)


@torch.no_grad()
def plan_position(features: torch.Tensor, position: float, futures: np.ndarray, critics: QuantileCriticEnsemble,
                  prior: PolicyPrior, planner: CVaRPlannerConfig, seed: int) -> float:
    """MPPI over position sequences (module docstring): normalised features (I − 1,), futures (N, ≥h) → position.

    The networks run once per decision in torch (critics on the value grid, prior for its trajectories); the MPPI
    iterations run in float64 numpy (small arrays: numpy's per-call overhead and row sort are the cheaper ones).
    All sampling is seeded by ``seed``.
    """
    cfg = planner.mppi
    h, n_pi = cfg.horizon, cfg.num_pi_trajs
    if futures.shape[1] < h:
        raise ValueError(f"mv_futures cover {futures.shape[1]} steps, the planner's horizon is {h}")
    futures = np.asarray(futures[:, :h], dtype=np.float64)  # (N, h)
    grid = np.linspace(-1.0, 1.0, cfg.value_grid)  # (G,)
    grid_values = terminal_cvar(critics, features, torch.from_numpy(grid).float(), planner).double().numpy()
    rng = np.random.default_rng(seed)
    actions = np.empty((cfg.num_samples, h))  # (S, h)
    if n_pi:  # prior rollouts: the features stay x_t, the position follows the prior's own actions
        generator = torch.Generator().manual_seed(seed)
        held = torch.full((n_pi,), float(position))
        shared = features.expand(n_pi, -1)
        for k in range(h):
            held = prior.sample(torch.cat([shared, held[:, None]], 1), generator)[0]
            actions[:n_pi, k] = held.double().numpy()
    mean, std = np.zeros(h), np.full(h, cfg.max_std)
    for _ in range(cfg.iterations):
        noise = rng.standard_normal((cfg.num_samples - n_pi, h))
        actions[n_pi:] = np.clip(mean + std * noise, -1.0, 1.0)
        terminal = np.interp(actions[:, -1], grid, grid_values)  # (S,) linear between grid points
        value = score_sequences(actions, position, futures, terminal, planner)  # (S,)
        elite_idx = np.argpartition(value, -cfg.num_elites)[-cfg.num_elites:]
        elite_value, elites = value[elite_idx], actions[elite_idx]  # (E,), (E, h)
        score = np.exp(cfg.temperature * cfg.score_scale * (elite_value - elite_value.max()))
        score /= score.sum()
        mean = score @ elites  # (h,)
        std = np.clip(np.sqrt(score @ (elites - mean) ** 2), cfg.min_std, cfg.max_std)
    return float(np.clip(mean[0], -1.0, 1.0))


class CVaRPlannerAgent(nn.Module):
    """Critics + policy prior + the training window's normaliser; ``act`` plans (a ``decide.TradingAgent``)."""

    kind = KIND

    def __init__(self, config: PlannerSpec) -> None:
        super().__init__()
        self.config = config
        planner = config.planner
        in_dim = sum(config.dims) + 1
        self.critics = QuantileCriticEnsemble(in_dim, planner.critic_hidden, planner.n_critics, planner.n_quantiles)
        self.prior = PolicyPrior(in_dim, planner.prior_hidden, planner.log_std_min, planner.log_std_max)
        self.register_buffer("obs_mean", torch.zeros(in_dim - 1))
        self.register_buffer("obs_std", torch.ones(in_dim - 1))

    @property
    def normalizer(self) -> ObsNormalizer:
        return ObsNormalizer(self.obs_mean.numpy().copy(), self.obs_std.numpy().copy(), self.config.dims,
                             self.config.planner.env.obs_clip)

    def set_normalizer(self, normalizer: ObsNormalizer) -> None:
        normalizer.check(self.config.dims, "normaliser")
        self.obs_mean.copy_(torch.from_numpy(normalizer.mean))
        self.obs_std.copy_(torch.from_numpy(normalizer.std))

    def decision_seed(self, end_timestamp: int) -> int:
        """The sampling seed of the decision at ``end_timestamp`` (same row → same samples → same decision)."""
        return (self.config.seed * 1_000_003 + int(end_timestamp)) % 2**63

    @torch.no_grad()
    def act(self, row: AgentRow, position: float) -> float:
        if row.mv_futures is None:
            raise ValueError(f"the CVaR planner needs mv_futures (N, H) at {row.end_timestamp}, got None")
        features = torch.from_numpy(self.normalizer.transform(row.features()))
        return plan_position(features, position, row.mv_futures, self.critics, self.prior, self.config.planner,
                             self.decision_seed(row.end_timestamp))

    def save(self, path: str | Path) -> Path:
        """safetensors file in the fin-ia checkpoint layout (tensors + the spec as JSON), written atomically."""
        from safetensors.torch import save

        tensors = {name: t.detach().cpu().contiguous() for name, t in self.state_dict().items()}
        header = {"format": FORMAT, "kind": KIND, "config": json.dumps(self.config.to_dict()), "extra": "{}"}
        atomic_write_bytes(Path(path), save(tensors, metadata=header))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> CVaRPlannerAgent:
        """The planner saved by ``save`` (CPU, eval mode, tensors exactly as saved)."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        if meta.get("format") != FORMAT or meta.get("kind") != KIND:
            raise ValueError(f"{path} is not a saved CVaR planner (format {meta.get('format')!r}, kind "
                             f"{meta.get('kind')!r})")
        agent = cls(PlannerSpec.from_dict(json.loads(meta["config"])))
        agent.load_state_dict(load_file(str(path)), strict=True)
        return agent.eval()
