"""Strate IV: trading agents on latent observations (no Dagster here).

- ``data``: the plain-array contract ``AgentData`` (one symbol's embeddings, multiverse summary/futures, returns,
  labels, gap flags), ``split_by_time``; ``synthetic``: a maker with a planted signal.
- ``env`` / ``vec_env``: ``LatentTradingEnv`` (gymnasium) and ``LatentTradingVecEnv`` (SB3 ``VecEnv``, exact).
- ``ppo``: ``train_ppo`` → ``PPOAgent``; ``planner`` / ``planner_train``: the TD-MPC2-style CVaR planner,
  ``train_cvar_planner`` → ``CVaRPlannerAgent``.
- ``decide``: ``decide(agent, row, position)``, ``agent_positions(agent, data)``, ``evaluate_agent``.
- ``profiles``: ``ppo_profile(profile)``, ``cvar_planner_profile(profile)`` (demo / cpu / full sizes).
- ``ppo_policy``: ``PPOPolicy``, the registered (pickle-free) form of a trained PPO agent (checkpoint kind
  ``ppo_policy``); ``assemble``: ``agent_data_from_frames`` (stage frames → ``AgentData``); ``stage``: the
  orchestrator's entry points ``agent_windows``, ``fit_ppo_agent``, ``fit_cvar_planner_agent``; ``report``: the
  real-candle command.

Names are imported lazily (``from fin_ia_models.agents import train_ppo`` works) so that reading ``AgentData`` does
not pull in stable-baselines3 and Lightning.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "AgentData": "data", "AgentRow": "data", "split_by_time": "data", "time_window": "data",
    "synthetic_agent_data": "synthetic",
    "EnvConfig": "config", "PPOConfig": "config",
    "MPPIConfig": "planner_config", "CVaRPlannerConfig": "planner_config", "PlannerSpec": "planner_config",
    "ObsNormalizer": "features",
    "LatentTradingEnv": "env", "LatentTradingVecEnv": "vec_env",
    "step_reward": "rewards", "net_returns": "rewards",
    "decide": "decide", "agent_positions": "decide", "evaluate_agent": "decide", "performance": "decide",
    "PPOAgent": "ppo", "train_ppo": "ppo", "PPOPolicy": "ppo_policy", "PPOPolicySpec": "ppo_policy",
    "CVaRPlannerAgent": "planner", "train_cvar_planner": "planner_train",
    "ppo_profile": "profiles", "cvar_planner_profile": "profiles",
    "agent_data_from_frames": "assemble", "agent_windows": "stage", "fit_ppo_agent": "stage",
    "fit_cvar_planner_agent": "stage",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
