"""The registered form of a PPO agent (kind ``ppo_policy``): SB3's policy tensors in the fin-ia safetensors format,
rebuilt from JSON without unpickling, deciding exactly as the trained agent — through a real sqlite MLflow registry
and ``load_registered_model``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fin_ia_models.agents.decide import agent_positions
from fin_ia_models.agents.ppo import train_ppo
from fin_ia_models.agents.ppo_policy import PPOPolicy, PPOPolicySpec
from fin_ia_models.agents.synthetic import synthetic_agent_data
from fin_ia_models.tracking.runs import TrackingTarget, load_registered_model, log_trained_model
from fin_ia_models.training.checkpoint import CheckpointError, checkpoint_bytes, load_checkpoint_bytes
from tests.agents.test_agents_ppo import TINY, _windows


@pytest.fixture(scope="module")
def trained():
    return train_ppo(_windows(10, 2, 200), _windows(20, 1, 60), TINY, seed=3)


def test_registered_policy_decides_exactly_as_the_trained_agent(trained, tmp_path):
    policy = PPOPolicy.from_agent(trained.model, seed=trained.seed)
    target = TrackingTarget(f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "artifacts").as_uri())
    logged = log_trained_model(target, experiment="fin-ia-agent-ppo", model_name="fin-ia-agent-ppo",
                               kind="ppo_policy", result=dataclasses.replace(trained, model=policy), upstream=[],
                               tags={}, params={})
    loaded = load_registered_model(target.tracking_uri, logged.model_uri)
    assert isinstance(loaded, PPOPolicy) and loaded.config == policy.config and loaded.config.seed == 3
    sb3 = trained.model.model.policy.state_dict()
    assert all(torch.equal(sb3[k], loaded.state_dict()[k]) for k in sb3)
    assert loaded.normalizer.to_dict() == trained.model.normalizer.to_dict()
    for seed in (30, 31):  # unseen windows: every decision bit-identical, and not trivially flat
        data = synthetic_agent_data(T=120, D=4, N=8, seed=seed)
        expected = agent_positions(trained.model, data)
        np.testing.assert_array_equal(agent_positions(loaded, data), expected)
        assert np.abs(expected).max() > 0.01


def test_the_checkpoint_is_refused_when_its_tensors_do_not_fit_its_config(trained):
    policy = PPOPolicy.from_agent(trained.model)
    data = checkpoint_bytes(policy, "ppo_policy")
    assert isinstance(load_checkpoint_bytes(data, "ok", kind="ppo_policy"), PPOPolicy)
    wider = PPOPolicy(dataclasses.replace(policy.config, net_arch=(32, 32)))
    with pytest.raises(CheckpointError, match="holds a 'ppo_policy' model, expected"):
        load_checkpoint_bytes(data, "ppo", kind="cvar_planner")
    forged = checkpoint_bytes(wider, "ppo_policy").replace(b"[32, 32]", b"[64, 64]")  # header says 64, tensors 32
    with pytest.raises(CheckpointError, match="do not fit a ppo_policy model"):
        load_checkpoint_bytes(forged, "forged")
    with pytest.raises(ValueError, match="activation must be one of"):
        PPOPolicySpec(dims=(4, 4, 4), net_arch=(8,), activation="gelu", env=policy.config.env)
