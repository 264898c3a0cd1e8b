"""train_cvar_planner: a tiny CPU smoke run (history, model choice, result fields, bad input), and
SIGTERM mid-training → Lightning checkpoint → resume ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

from fin_ia_models.agents.data import AgentData
from fin_ia_models.agents.planner import CVaRPlannerAgent
from fin_ia_models.agents.planner_config import CVaRPlannerConfig, MPPIConfig
from fin_ia_models.agents.planner_train import train_cvar_planner
from fin_ia_models.agents.synthetic import synthetic_agent_data
from fin_ia_models.utils.preemption import CHECKPOINT_NAME, TrainingPreempted

TINY = CVaRPlannerConfig(mppi=MPPIConfig(num_samples=32, num_elites=4, num_pi_trajs=4, iterations=2), n_critics=2,
                         n_quantiles=4, critic_hidden=(16,), prior_hidden=(16,), batch_size=32, max_steps=12,
                         eval_every_n_steps=4, lr=3e-3)


def _windows(seed: int, n: int, T: int) -> list[AgentData]:
    return [synthetic_agent_data(T=T, D=3, N=8, H=3, R=4, seed=seed + i, symbol=f"S{i}") for i in range(n)]


def test_tiny_training_run():
    result = train_cvar_planner(_windows(0, 2, 80), _windows(10, 1, 30), TINY, seed=1)
    assert isinstance(result.model, CVaRPlannerAgent) and not result.model.training
    assert [row["step"] for row in result.history] == [4.0, 8.0, 12.0]
    assert all(np.isfinite(row["critic_loss"]) and np.isfinite(row["prior_loss"]) for row in result.history)
    assert result.metrics["best_step"] in (4.0, 8.0, 12.0) and result.metrics["train_steps"] == 12
    assert result.info["n_transitions"] == 2 * 79 and result.config == TINY
    assert CVaRPlannerConfig.from_dict(TINY.to_dict()) == TINY
    assert result.output_example.shape == (1, 1) and abs(result.output_example[0, 0]) <= 1
    with pytest.raises(ValueError, match="the planner needs mv_futures"):
        no_futures = AgentData(**{**{n: getattr(_windows(0, 1, 80)[0], n) for n in (
            "end_timestamp", "embedding", "mv_summary", "past_returns", "next_return", "tradable")}})
        train_cvar_planner([no_futures], _windows(10, 1, 30), TINY, seed=1)


def _final_state(checkpoint_dir) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint_dir / CHECKPOINT_NAME, weights_only=False)["state_dict"]


def test_sigterm_then_resume_gives_the_uninterrupted_result(tmp_path):
    train, val = _windows(20, 2, 60), _windows(30, 1, 25)
    reference = train_cvar_planner(train, val, TINY, seed=2, checkpoint_dir=tmp_path / "a")

    def preempt_at_step_4(row):
        if row["step"] == 4:
            os.kill(os.getpid(), signal.SIGTERM)  # PreemptionCheckpoint's handler only sets a flag

    with pytest.raises(TrainingPreempted) as stopped:
        train_cvar_planner(train, val, TINY, seed=2, checkpoint_dir=tmp_path / "b", log=preempt_at_step_4)
    assert stopped.value.global_step == 5  # the step in flight finished and was saved
    resumed = train_cvar_planner(train, val, TINY, seed=2, checkpoint_dir=tmp_path / "b")
    assert resumed.info["resumed_from_step"] == 5
    assert resumed.history == reference.history
    final_a, final_b = _final_state(tmp_path / "a"), _final_state(tmp_path / "b")
    assert final_a.keys() == final_b.keys() and all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    chosen_a, chosen_b = reference.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(chosen_a[k], chosen_b[k]) for k in chosen_a)
