"""Agent config sizes per compute profile (``fin_ia_models.config.PROFILES``): the orchestrator picks the profile,
the agents never hard-code sizes. Every field not listed keeps its ``PPOConfig`` / ``CVaRPlannerConfig`` default.

Token counts that set them (16-candle tokens of 1h candles): the demo window trains on two months (~90 tokens per
symbol) and validates on one (~45); the full history trains on ~3,300 tokens per symbol (2017-08 … 2023-09) and
validates on one quarter (~138).
"""

from __future__ import annotations

from dataclasses import replace

from fin_ia_models.agents.config import EnvConfig, PPOConfig
from fin_ia_models.agents.planner_config import CVaRPlannerConfig
from fin_ia_models.config import check_profile

PPO_SIZES: dict[str, dict] = {
    # ~90 training tokens: episodes of 32 tokens, 64 updates of 256 env steps (seconds on one core)
    "demo": dict(env=EnvConfig(reward_scale=100.0, episode_len=32), n_envs=8, n_steps=32, batch_size=64,
                 total_timesteps=16_384, eval_every_n_updates=4),
    # full history on CPU: ~250 updates of 2,048 env steps (minutes at ~2k env steps/s)
    "cpu": dict(total_timesteps=500_000, eval_every_n_updates=5),
    # larger nets and 4× the samples; PPO's MLPs still run on the CPU cores of the GPU pod
    "full": dict(n_envs=64, n_steps=128, batch_size=1024, net_arch=(256, 256), total_timesteps=2_000_000,
                 eval_every_n_updates=5),
}

PLANNER_SIZES: dict[str, dict] = {
    # ~180 transitions: a few hundred steps; each validation plans ~90 decisions at ~3 ms
    "demo": dict(max_steps=400, eval_every_n_steps=100, batch_size=128),
    "cpu": dict(max_steps=10_000, eval_every_n_steps=1_000),
    "full": dict(max_steps=50_000, eval_every_n_steps=5_000, critic_hidden=(256, 256), prior_hidden=(256, 256)),
}


def ppo_profile(profile: str, **overrides) -> PPOConfig:
    """The ``profile``'s PPO config; ``overrides`` replace fields."""
    return replace(PPOConfig(**PPO_SIZES[check_profile(profile)]), **overrides)


def cvar_planner_profile(profile: str, **overrides) -> CVaRPlannerConfig:
    """The ``profile``'s CVaR planner config; ``overrides`` replace fields."""
    return replace(CVaRPlannerConfig(**PLANNER_SIZES[check_profile(profile)]), **overrides)
