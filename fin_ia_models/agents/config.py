"""Typed configuration of the Strate IV agents: the trading environment's costs and episodes (``EnvConfig``) and
the PPO trainer (``PPOConfig``). The CVaR planner's configs live in ``planner_config.py``.

Costs are in basis points of traded notional per unit of |Δposition| (a position of 1 = the whole equity long).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fin_ia_models.utils.config_io import ConfigDict

SELECT_BY = ("sharpe", "net_reward")  # validation score that picks the kept model (see ``selection.py``)


@dataclass(frozen=True)
class EnvConfig(ConfigDict):
    """What the latent trading environment charges, penalises and observes."""

    fee_bps: float = 10.0  # Binance spot taker fee (0.10 %) per unit of |Δposition|
    slippage_bps: float = 5.0  # half-spread + impact of a market order on BTC/ETH 1h, per unit of |Δposition|
    risk_penalty: float = 0.0  # λ of the mean-variance penalty −λ·(position·return)² per step; 0 = risk-neutral reward
    episode_len: int = 128  # decisions per training episode (128 tokens of 16 h ≈ 85 days): long enough for regimes
    obs_clip: float = 10.0  # normalised features clipped to ±obs_clip (as SB3's VecNormalize): one outlier ≠ a blow-up
    reward_scale: float = 1.0  # rewards are multiplied by this (PPO uses 100: per-step rewards in %, O(1) for its nets)

    def __post_init__(self) -> None:
        for name in ("fee_bps", "slippage_bps", "risk_penalty"):
            value = getattr(self, name)
            if not value >= 0.0:  # also rejects NaN
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.episode_len < 1:
            raise ValueError(f"episode_len must be >= 1, got {self.episode_len}")
        if not self.obs_clip > 0.0:
            raise ValueError(f"obs_clip must be > 0, got {self.obs_clip}")
        if not self.reward_scale > 0.0:
            raise ValueError(f"reward_scale must be > 0, got {self.reward_scale}")

    @property
    def cost_rate(self) -> float:
        """Fee + slippage as a fraction of notional per unit of |Δposition| (15 bps → 0.0015)."""
        return (self.fee_bps + self.slippage_bps) / 1e4


def _ppo_env() -> EnvConfig:
    return EnvConfig(reward_scale=100.0)


@dataclass(frozen=True)
class PPOConfig(ConfigDict):
    """PPO (Schulman et al. 2017) through stable-baselines3 on the vectorised latent env, with validation model
    choice. SB3's defaults unless a comment says why not."""

    env: EnvConfig = field(default_factory=_ppo_env)  # costs, episodes; rewards ×100 so value targets are O(1)
    n_envs: int = 16  # episodes stepped in parallel (random windows of the training symbols)
    n_steps: int = 128  # steps per env per rollout; n_envs·n_steps = 2048 transitions per update (SB3's default)
    batch_size: int = 256  # minibatch of the PPO epochs
    n_epochs: int = 4  # passes over each rollout (SB3: 10; fewer, as returns are noisy and overfit fast)
    learning_rate: float = 3e-4  # Adam step size (SB3's default)
    gamma: float = 0.9  # discount: a decision's cost/benefit plays out over ~10 tokens, not hundreds
    gae_lambda: float = 0.95  # GAE λ (SB3's default)
    clip_range: float = 0.2  # PPO ratio clip (SB3's default)
    ent_coef: float = 0.0  # entropy bonus; 0 as in SB3 (exploration comes from the Gaussian's learned std)
    vf_coef: float = 0.5  # value-loss weight (SB3's default)
    max_grad_norm: float = 0.5  # gradient clip (SB3's default)
    net_arch: tuple[int, ...] = (64, 64)  # hidden sizes of the policy and value MLPs (SB3's default)
    log_std_init: float = -1.0  # initial action std e^-1 ≈ 0.37: SB3's 1.0 churns positions and pays costs for noise
    total_timesteps: int = 200_000  # env steps over all envs; rounded up to whole rollouts (n_envs·n_steps)
    eval_every_n_updates: int = 1  # validation evaluation (and model choice) every that many PPO updates
    select_by: str = "sharpe"  # validation score keeping the best model: "sharpe" or "net_reward"
    device: str = "cpu"  # SB3 device; MLP policies of this size run faster on CPU than a GPU round trip

    def __post_init__(self) -> None:
        for name in ("n_envs", "n_steps", "batch_size", "n_epochs", "total_timesteps", "eval_every_n_updates"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        rollout = self.n_envs * self.n_steps
        if self.batch_size > rollout:
            raise ValueError(f"batch_size {self.batch_size} exceeds the rollout n_envs·n_steps = "
                             f"{self.n_envs}·{self.n_steps} = {rollout}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"gae_lambda must be in [0, 1], got {self.gae_lambda}")
        if not self.learning_rate > 0.0 or not self.clip_range > 0.0:
            raise ValueError(f"learning_rate and clip_range must be > 0, got {self.learning_rate}, {self.clip_range}")
        if not self.net_arch or any(width < 1 for width in self.net_arch):
            raise ValueError(f"net_arch must be non-empty positive widths, got {self.net_arch}")
        if self.select_by not in SELECT_BY:
            raise ValueError(f"select_by must be one of {SELECT_BY}, got {self.select_by!r}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device must be cpu, cuda or auto, got {self.device!r}")
