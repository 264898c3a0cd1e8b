"""Strate IV stage entry points for the orchestrator: stage frames in, a registrable ``TrainingResult`` out.

``agent_windows`` builds each symbol's ``AgentData`` (``assemble.py``) and cuts it by the time split;
``fit_ppo_agent`` / ``fit_cvar_planner_agent`` train on every symbol's training window, choose the parameters on the
validation windows (never the test window) and return a result whose ``model`` is a registered checkpoint kind:
``PPOPolicy`` (``ppo_policy``, the SB3 policy without its pickled zip) or ``CVaRPlannerAgent`` (``cvar_planner``).

``trial_val_sharpe`` (a final metric of every agent run) is what the deflated Sharpe ratio counts as a trial's
Sharpe (``fin_ia_models.tracking.trials``): the chosen parameters' annualised validation net Sharpe, or 0 when the
chosen agent never traded on validation (its Sharpe is undefined; it earned exactly nothing, which is what a Sharpe
of 0 means for the spread of the trials) — so a trial is never dropped from N for being flat.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import pandas as pd

from fin_ia_models.agents.assemble import agent_data_from_frames
from fin_ia_models.agents.data import AgentData, split_by_time
from fin_ia_models.config import TimeSplit
from fin_ia_models.training.result import TrainingResult

TRIAL_METRIC = "trial_val_sharpe"
WINDOWS = ("train", "val", "test")


def agent_windows(embeddings: Mapping[str, pd.DataFrame], trajectories: Mapping[str, pd.DataFrame],
                  candles: Mapping[str, pd.DataFrame], split: TimeSplit) -> dict[str, dict[str, AgentData]]:
    """symbol → {"train", "val", "test"} ``AgentData`` of every symbol present in all three inputs (sorted)."""
    symbols = sorted(set(embeddings) & set(trajectories) & set(candles))
    if not symbols:
        raise ValueError(f"no symbol has embeddings, trajectories and candles: {sorted(embeddings)}, "
                         f"{sorted(trajectories)}, {sorted(candles)}")
    return {s: split_by_time(agent_data_from_frames(embeddings[s], trajectories[s], candles[s], s), split)
            for s in symbols}


def _windows(windows: Mapping[str, Mapping[str, AgentData]], name: str) -> list[AgentData]:
    return [w[name] for w in windows.values()]


def _finish(result: TrainingResult, model, x_key: str, title: str, split: TimeSplit, symbols: list[str]
            ) -> TrainingResult:
    from fin_ia_models.evaluation.plots import loss_curve_png

    sharpe = result.metrics["best_val_sharpe"]
    result.metrics[TRIAL_METRIC] = 0.0 if math.isnan(sharpe) else float(sharpe)
    result.model = model
    result.plots = {"training_curve": _curve_png(result.history, x_key, title),
                    **({"losses": loss_curve_png(result.history, ["critic_loss", "prior_loss"], f"{title}: losses",
                                                 xlabel="evaluation")}
                       if any("critic_loss" in row for row in result.history) else {})}
    result.info.update(symbols=", ".join(symbols), train_window=f"{split.train_start} … {split.train_end}",
                       val_window=f"{split.val_start} … {split.val_end}",
                       validation_score=f"Sharpe {sharpe:.2f}, net log return {result.metrics['best_val_net_reward']:+.4f}")
    return result


def _curve_png(history: list[dict], x_key: str, title: str) -> bytes:
    """Validation net Sharpe and training mean episode reward (when present) against training progress."""
    from fin_ia_models.evaluation.plots import _figure, _png

    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    x = [row[x_key] for row in history]
    ax.plot(x, [row["val_sharpe"] for row in history], marker="o", ms=3, label="validation net Sharpe")
    if any("train_mean_episode_reward" in row for row in history):
        ax2 = ax.twinx()
        ax2.plot(x, [row.get("train_mean_episode_reward", math.nan) for row in history], color="tab:orange",
                 marker="s", ms=3, label="train mean episode log return")
        ax2.legend(fontsize=8, loc="lower right")
    ax.set_xlabel(x_key.replace("_", " "))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)


def fit_ppo_agent(*, windows: Mapping[str, Mapping[str, AgentData]], split: TimeSplit, config, seed: int,
                  checkpoint_dir=None, checkpoint_every_n_steps: int = 0,
                  log: Callable[[dict[str, float]], None] | None = None) -> TrainingResult:
    """PPO on every symbol's training window, chosen on validation; ``model`` = ``PPOPolicy``."""
    from fin_ia_models.agents.ppo import train_ppo
    from fin_ia_models.agents.ppo_policy import PPOPolicy

    result = train_ppo(_windows(windows, "train"), _windows(windows, "val"), config, seed,
                       checkpoint_dir=checkpoint_dir, checkpoint_every_n_steps=checkpoint_every_n_steps, log=log)
    return _finish(result, PPOPolicy.from_agent(result.model, seed), "timesteps", "PPO training", split,
                   list(windows))


def fit_cvar_planner_agent(*, windows: Mapping[str, Mapping[str, AgentData]], split: TimeSplit, config, seed: int,
                           checkpoint_dir=None, checkpoint_every_n_steps: int = 0,
                           log: Callable[[dict[str, float]], None] | None = None) -> TrainingResult:
    """The TD-MPC2-style CVaR planner on every symbol's training window, chosen on validation."""
    from fin_ia_models.agents.planner_train import train_cvar_planner

    result = train_cvar_planner(_windows(windows, "train"), _windows(windows, "val"), config, seed,
                                checkpoint_dir=checkpoint_dir, checkpoint_every_n_steps=checkpoint_every_n_steps,
                                log=log)
    return _finish(result, result.model, "step", "CVaR planner training", split, list(windows))
