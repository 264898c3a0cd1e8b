"""Typed configuration of the TD-MPC2-style CVaR planner: the MPPI search (``MPPIConfig``, TD-MPC2's defaults), its
critics, policy prior and training (``CVaRPlannerConfig``), and what a saved planner is built from
(``PlannerSpec``). What each setting changes is explained in ``planner.py``."""

from __future__ import annotations

from dataclasses import dataclass, field

from fin_ia_models.agents.config import SELECT_BY, EnvConfig
from fin_ia_models.utils.config_io import ConfigDict


@dataclass(frozen=True)
class MPPIConfig(ConfigDict):
    """The planner's search at each decision (Hansen et al. 2024, TD-MPC2, appendix H defaults)."""

    horizon: int = 3  # planned steps (tokens); needs mv_futures with H >= horizon
    iterations: int = 6  # MPPI refinements of the sampling distribution
    num_samples: int = 512  # action sequences scored per iteration (incl. the policy-prior ones)
    num_elites: int = 64  # best sequences that set the next mean/std
    num_pi_trajs: int = 24  # sequences drawn from the learned policy prior (seed the search)
    temperature: float = 0.5  # softmax temperature over elite scores (in units of ``score_scale``)
    min_std: float = 0.05  # floor of the sampling std (keeps searching around the mean)
    max_std: float = 2.0  # initial/ceiling std: wider than the action box, so early samples hit its edges
    cvar_alpha: float = 0.05  # the objective is the mean of the worst 5 % of outcomes; 1.0 = the plain mean
    score_scale: float = 1e4  # values are log returns (~1e-2); ×1e4 = basis points, so a temperature of 0.5 weighs
    # differences of a few bps as TD-MPC2's weighs differences of its O(1)-per-step rewards
    value_grid: int = 65  # terminal positions at which the critics are evaluated once per decision (then linearly
    # interpolated): spacing 1/32 of a position, where the critic's curvature makes the error negligible

    def __post_init__(self) -> None:
        for name in ("horizon", "iterations", "num_samples", "num_elites"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.num_pi_trajs < self.num_samples:
            raise ValueError(f"num_pi_trajs must be in [0, num_samples = {self.num_samples}), got {self.num_pi_trajs}")
        if self.num_elites > self.num_samples:
            raise ValueError(f"num_elites {self.num_elites} exceeds num_samples {self.num_samples}")
        if not self.temperature > 0 or not self.score_scale > 0:
            raise ValueError(f"temperature and score_scale must be > 0, got {self.temperature}, {self.score_scale}")
        if not 0 < self.min_std <= self.max_std:
            raise ValueError(f"need 0 < min_std <= max_std, got {self.min_std}, {self.max_std}")
        if self.value_grid < 2:
            raise ValueError(f"value_grid must be >= 2 points, got {self.value_grid}")
        if not 0 < self.cvar_alpha <= 1:
            raise ValueError(f"cvar_alpha must be in (0, 1], got {self.cvar_alpha}")


def _planner_env() -> EnvConfig:
    return EnvConfig(reward_scale=100.0)


@dataclass(frozen=True)
class CVaRPlannerConfig(ConfigDict):
    """Critics, policy prior and their TD training; the planner's costs come from ``env``."""

    env: EnvConfig = field(default_factory=_planner_env)  # costs, risk penalty; critics learn reward_scale × return
    mppi: MPPIConfig = field(default_factory=MPPIConfig)  # the search at each decision (also used in validation)
    discount: float = 0.9  # γ per token step: as PPO's, a position's consequences play out over ~10 tokens
    n_critics: int = 5  # ensemble size (TD-MPC2: 5 Q-functions)
    n_quantiles: int = 16  # quantiles per critic (QR-DQN uses 200 on Atari; 16 resolve a 5 % tail of N·16 atoms)
    critic_hidden: tuple[int, ...] = (64, 64)  # critic MLP widths (Linear → LayerNorm → Mish, as TD-MPC2)
    prior_hidden: tuple[int, ...] = (64, 64)  # policy-prior MLP widths
    log_std_min: float = -5.0  # bounds of the prior's log std (TD-MPC2: −10, 2; a tanh-squashed position needs
    log_std_max: float = 1.0  # no std above e^1 and a std below e^-5 of a position is already deterministic)
    entropy_coef: float = 1e-4  # prior entropy bonus (TD-MPC2's value): keeps its 24 seed trajectories diverse
    huber_kappa: float = 1.0  # quantile Huber threshold, in reward_scale units (1 % of return at ×100)
    tau: float = 0.01  # Polyak rate of the target critics (TD-MPC2's value)
    lr: float = 3e-4  # Adam step size of critics and prior (TD-MPC2's value)
    batch_size: int = 256  # transitions per step (TD-MPC2's value)
    max_steps: int = 2000  # gradient steps
    grad_clip: float = 20.0  # gradient-norm clip (TD-MPC2's value)
    eval_every_n_steps: int = 500  # validation run of the full planner (and model choice) every that many steps
    select_by: str = "sharpe"  # validation score keeping the best model: "sharpe" or "net_reward"

    def __post_init__(self) -> None:
        if not 0.0 < self.discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {self.discount}")
        for name in ("n_critics", "n_quantiles", "batch_size", "max_steps", "eval_every_n_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_critics < 2:
            raise ValueError(f"n_critics must be >= 2 (TD targets take the min of two), got {self.n_critics}")
        for name in ("critic_hidden", "prior_hidden"):
            widths = getattr(self, name)
            if not widths or min(widths) < 1:
                raise ValueError(f"{name} must be non-empty positive widths, got {widths}")
        if not self.log_std_min < self.log_std_max:
            raise ValueError(f"need log_std_min < log_std_max, got {self.log_std_min}, {self.log_std_max}")
        if not self.entropy_coef >= 0:
            raise ValueError(f"entropy_coef must be >= 0, got {self.entropy_coef}")
        for name in ("huber_kappa", "lr", "grad_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if self.select_by not in SELECT_BY:
            raise ValueError(f"select_by must be one of {SELECT_BY}, got {self.select_by!r}")


@dataclass(frozen=True)
class PlannerSpec(ConfigDict):
    """Everything a saved planner is rebuilt from: its config, the data widths and the decision seed."""

    planner: CVaRPlannerConfig  # networks, search, costs
    dims: tuple[int, int, int]  # (D, K, R) widths of embedding, mv_summary, past_returns it was trained on
    seed: int  # training seed; also seeds each decision's sampling together with the row's end_timestamp

    def __post_init__(self) -> None:
        if len(self.dims) != 3 or min(self.dims) < 1:
            raise ValueError(f"dims must be three positive widths (D, K, R), got {self.dims}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
