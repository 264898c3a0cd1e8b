"""PPO agent: learns a planted signal and beats flat on held-out data, validation model choice, the SB3 zip round trip
(same parameters, same decisions), decisions causal and refusing foreign widths, SIGTERM mid-training → checkpoint →
resume ends with exactly the parameters of an uninterrupted run."""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest
import torch

from fin_ia_models.agents.config import EnvConfig, PPOConfig
from fin_ia_models.agents.data import AgentData
from fin_ia_models.agents.decide import agent_positions, decide, evaluate_agent
from fin_ia_models.agents.ppo import PPOAgent, train_ppo
from fin_ia_models.agents.sb3_preemption import CHECKPOINT_NAME
from fin_ia_models.agents.synthetic import synthetic_agent_data
from fin_ia_models.utils.preemption import TrainingPreempted

TINY = PPOConfig(env=EnvConfig(reward_scale=100.0, episode_len=32), n_envs=4, n_steps=32, batch_size=64, n_epochs=2,
                 total_timesteps=512, learning_rate=1e-3)  # 4 updates of 128 env steps


def _windows(seed: int, n: int, T: int) -> list[AgentData]:
    return [synthetic_agent_data(T=T, D=4, N=8, seed=seed + i, symbol=f"S{i}") for i in range(n)]


@pytest.fixture(scope="module")
def tiny():
    return train_ppo(_windows(10, 2, 200), _windows(20, 1, 60), TINY, seed=3)


def test_tiny_run_result(tiny):
    assert isinstance(tiny.model, PPOAgent) and tiny.seed == 3 and tiny.device == "cpu"
    assert [row["update"] for row in tiny.history] == [1.0, 2.0, 3.0, 4.0]
    assert tiny.metrics["train_timesteps"] == 512 and tiny.metrics["train_episodes"] == 4 * 512 / (4 * 32)
    best = max(tiny.history, key=lambda row: -math.inf if math.isnan(row["val_sharpe"]) else row["val_sharpe"])
    assert tiny.metrics["best_val_sharpe"] == best["val_sharpe"] and tiny.metrics["best_step"] == best["timesteps"]
    assert TINY.from_dict(tiny.config.to_dict()) == TINY and not tiny.datasets


def test_learns_the_planted_signal_and_beats_flat_out_of_sample():
    config = PPOConfig(env=EnvConfig(reward_scale=100.0, episode_len=64), n_envs=8, n_steps=64, batch_size=128,
                       n_epochs=4, total_timesteps=8192, learning_rate=1e-3, eval_every_n_updates=4)
    result = train_ppo(_windows(0, 2, 1000), _windows(100, 1, 300), config, seed=0)
    held_out = evaluate_agent(result.model, _windows(200, 2, 500), config.env)
    # flat earns exactly 0 (and has no Sharpe); the agent must earn after 15 bps costs on unseen windows
    assert held_out["net_reward"] > 0.05 and held_out["sharpe"] > 2.0 and held_out["exposure"] > 0.05


def test_sb3_zip_round_trip_is_bit_identical(tiny, tmp_path):
    agent = tiny.model
    path = agent.save(tmp_path / "ppo.zip")
    loaded = PPOAgent.load(path)
    before, after = agent.model.policy.state_dict(), loaded.model.policy.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert loaded.normalizer.to_dict() == agent.normalizer.to_dict() and loaded.env_config == agent.env_config
    data = _windows(30, 1, 80)[0]
    np.testing.assert_array_equal(agent_positions(loaded, data), agent_positions(agent, data))


def test_decisions_are_causal_and_refuse_other_widths(tiny):
    data = _windows(40, 1, 80)[0]
    positions = agent_positions(tiny.model, data)
    t = 40
    future = {n: getattr(data, n).copy() for n in ("embedding", "mv_summary", "past_returns", "next_return")}
    for name in ("embedding", "mv_summary", "past_returns"):
        future[name][t + 1:] = -future[name][t + 1:] * 3
    future["next_return"][t:] = 0.5
    changed = AgentData(end_timestamp=data.end_timestamp, tradable=data.tradable, mv_futures=data.mv_futures,
                        **future)
    changed_positions = agent_positions(tiny.model, changed)
    np.testing.assert_array_equal(changed_positions[:t + 1], positions[:t + 1])
    assert not np.array_equal(changed_positions[t + 1:], positions[t + 1:])  # the perturbation did reach the agent
    wide = synthetic_agent_data(T=20, D=6)
    with pytest.raises(ValueError, match="embedding width 6 differs from the 4 the agent was trained on"):
        agent_positions(tiny.model, wide)
    with pytest.raises(ValueError, match="position held must be a finite number in \\[-1, 1\\], got 1.5"):
        decide(tiny.model, data.row(0), 1.5)


def _final_policy(checkpoint_dir) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint_dir / CHECKPOINT_NAME, weights_only=True)
    assert state["reason"] == "complete"
    return state["policy"]


def test_sigterm_then_resume_gives_the_uninterrupted_result(tmp_path):
    train, val = _windows(50, 2, 120), _windows(60, 1, 50)
    config = PPOConfig(env=EnvConfig(reward_scale=100.0, episode_len=16), n_envs=3, n_steps=16, batch_size=24,
                       n_epochs=2, total_timesteps=6 * 48, learning_rate=1e-3)  # 6 updates
    reference = train_ppo(train, val, config, seed=7, checkpoint_dir=tmp_path / "a")

    def preempt_after_second_update(row):
        if row["update"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler only sets a flag; training saves and raises

    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingPreempted) as stopped:
        train_ppo(train, val, config, seed=7, checkpoint_dir=tmp_path / "b", log=preempt_after_second_update)
    assert stopped.value.global_step == 2 * 48
    assert signal.getsignal(signal.SIGTERM) is handler  # the previous handler is back
    resumed = train_ppo(train, val, config, seed=7, checkpoint_dir=tmp_path / "b")
    assert resumed.info["resumed_from_timesteps"] == 96
    assert resumed.history == reference.history  # every validation score of every update
    final_a, final_b = _final_policy(tmp_path / "a"), _final_policy(tmp_path / "b")
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)  # the last parameters, bit for bit
    best_a, best_b = reference.model.model.policy.state_dict(), resumed.model.model.policy.state_dict()
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a)  # and the chosen ones
    again = train_ppo(train, val, config, seed=7, checkpoint_dir=tmp_path / "b")  # complete: nothing to train
    assert again.info["resumed_from_timesteps"] == 6 * 48 and again.history == reference.history
    with pytest.raises(ValueError, match="belongs to another training run"):
        train_ppo(train, val, config, seed=8, checkpoint_dir=tmp_path / "b")


def test_periodic_checkpoints_fall_on_the_first_update_boundary_after_each_multiple(tmp_path):
    train, val = _windows(70, 1, 100), _windows(80, 1, 40)
    config = PPOConfig(env=EnvConfig(reward_scale=100.0, episode_len=16), n_envs=3, n_steps=16, batch_size=24,
                       n_epochs=1, total_timesteps=6 * 48)  # boundaries every 48 env steps
    seen = []

    def look(row):  # called at each boundary before that boundary's checkpoint is written
        path = tmp_path / CHECKPOINT_NAME
        state = torch.load(path, weights_only=True) if path.exists() else None
        seen.append(None if state is None else (state["reason"], state["num_timesteps"]))

    train_ppo(train, val, config, seed=1, checkpoint_dir=tmp_path, checkpoint_every_n_steps=100, log=look)
    # multiples of 100 are first passed at 144 and 240 env steps
    assert seen == [None, None, None, ("periodic", 144), ("periodic", 144), ("periodic", 240)]
    assert torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["reason"] == "complete"
    with pytest.raises(ValueError, match="checkpoint_every_n_steps = 5 needs"):
        train_ppo(train, val, config, seed=1, checkpoint_every_n_steps=5)
