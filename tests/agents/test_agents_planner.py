"""The CVaR planner's parts against references and hand-computed cases: CVaR, the quantile Huber loss, the critics'
fast path, sequence scoring, the terminal-value grid; then the planner itself: it picks the CVaR-optimal position
(not the mean-optimal one) on toy futures, decides deterministically and causally, round-trips through its file."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fin_ia_models.agents.config import EnvConfig
from fin_ia_models.agents.critics import QuantileCriticEnsemble, quantile_huber_loss, quantile_huber_loss_ref
from fin_ia_models.agents.cvar import cvar_lower, cvar_lower_np, cvar_lower_ref
from fin_ia_models.agents.data import AgentData, AgentRow
from fin_ia_models.agents.decide import agent_positions, decide
from fin_ia_models.agents.features import ObsNormalizer
from fin_ia_models.agents.planner import (CVaRPlannerAgent, score_sequences, score_sequences_ref, terminal_cvar)
from fin_ia_models.agents.planner_config import CVaRPlannerConfig, MPPIConfig, PlannerSpec
from fin_ia_models.agents.synthetic import synthetic_agent_data

FAST = MPPIConfig(num_samples=64, num_elites=8, num_pi_trajs=8, iterations=3)  # for loops over many rows


def test_cvar_by_hand_and_against_the_reference():
    values = np.array([[3.0, -1.0, 2.0, -4.0, 0.0]])
    assert cvar_lower_ref(values, 0.2)[0] == -4.0  # k = 1: the worst outcome
    assert cvar_lower_ref(values, 0.3)[0] == pytest.approx((-4.0 + 0.5 * -1.0) / 1.5)  # k = 1.5
    assert cvar_lower_ref(values, 1.0)[0] == pytest.approx(0.0)  # the mean
    rng = np.random.default_rng(0)
    for alpha in (0.05, 0.1, 0.37, 1.0):
        x = rng.normal(size=(7, 64))
        np.testing.assert_allclose(cvar_lower_np(x, alpha), cvar_lower_ref(x, alpha), rtol=1e-12)
        np.testing.assert_allclose(cvar_lower(torch.from_numpy(x), alpha).numpy(), cvar_lower_ref(x, alpha),
                                   rtol=1e-12)
    with pytest.raises(ValueError, match="alpha must be in \\(0, 1\\], got 0"):
        cvar_lower_ref(values, 0.0)


def test_quantile_huber_loss_hand_computed():
    # τ̂ = (0.25, 0.75), θ = (0, 1), targets (0.5, 3), κ = 1. u = T − θ: (0.5, 3) for θ0, (−0.5, 2) for θ1.
    # Huber: 0.125, 2.5 | 0.125, 1.5.  Weights |τ − 1{u<0}|: 0.25, 0.25 | 0.25, 0.75.
    # Σ_i mean_j: (0.03125 + 0.625)/2 + (0.03125 + 1.125)/2 = 0.328125 + 0.578125 = 0.90625
    pred, target = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 3.0]])
    assert quantile_huber_loss(pred, target, 1.0).item() == pytest.approx(0.90625, abs=1e-7)
    assert quantile_huber_loss_ref([[0.0, 1.0]], [[0.5, 3.0]], 1.0) == pytest.approx(0.90625, abs=1e-12)
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(5, 8)), rng.normal(size=(5, 6)) * 2
    for kappa in (0.3, 1.0):
        fast = quantile_huber_loss(torch.from_numpy(pred), torch.from_numpy(target), kappa).item()
        assert fast == pytest.approx(quantile_huber_loss_ref(pred.tolist(), target.tolist(), kappa), rel=1e-12)


def _random_critics(in_dim: int, seed: int) -> QuantileCriticEnsemble:
    torch.manual_seed(seed)
    critics = QuantileCriticEnsemble(in_dim, (32, 32), 5, 16)
    with torch.no_grad():  # the output layer starts at zero; make it say something
        critics.weights[-1].normal_(0, 0.5)
        critics.biases[-1].normal_(0, 0.5)
    return critics


def test_critic_fast_path_matches_the_reference():
    critics = _random_critics(11, 0)
    features, positions = torch.randn(10), torch.rand(33) * 2 - 1
    with torch.no_grad():
        reference = critics(torch.cat([features.expand(33, -1), positions[:, None]], 1))
        fast = critics.forward_fixed_state(features, positions)
    assert fast.shape == (5, 33, 16)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)
    assert not QuantileCriticEnsemble(11, (8,), 2, 4)(torch.randn(3, 11)).any()  # zero-initialised output


@pytest.mark.parametrize("risk, alpha", [(0.0, 0.05), (0.7, 0.05), (0.0, 0.3), (0.2, 1.0)])
def test_sequence_scores_match_the_loop_reference(risk, alpha):
    planner = CVaRPlannerConfig(env=EnvConfig(risk_penalty=risk, reward_scale=100.0), discount=0.8,
                                mppi=dataclasses.replace(MPPIConfig(), cvar_alpha=alpha))
    rng = np.random.default_rng(2)
    actions, futures = rng.uniform(-1, 1, (20, 3)), rng.normal(0, 0.02, (30, 3))
    terminal = rng.normal(0, 0.01, 20)
    np.testing.assert_allclose(score_sequences(actions, 0.3, futures, terminal, planner),
                               score_sequences_ref(actions, 0.3, futures, terminal, planner), rtol=1e-10, atol=1e-14)


def test_terminal_value_grid_interpolation_error_is_below_one_basis_point():
    planner = CVaRPlannerConfig()
    for seed in range(3):
        critics, features = _random_critics(11, seed), torch.randn(10)
        grid = np.linspace(-1, 1, planner.mppi.value_grid)
        positions = np.random.default_rng(seed).uniform(-1, 1, 400)
        with torch.no_grad():
            on_grid = terminal_cvar(critics, features, torch.from_numpy(grid).float(), planner).double().numpy()
            exact = terminal_cvar(critics, features, torch.from_numpy(positions).float(), planner).double().numpy()
        assert np.abs(np.interp(positions, grid, on_grid) - exact).max() < 1e-4


def _toy_agent(alpha: float) -> CVaRPlannerAgent:
    planner = CVaRPlannerConfig(mppi=dataclasses.replace(MPPIConfig(), cvar_alpha=alpha))
    agent = CVaRPlannerAgent(PlannerSpec(planner, (2, 1, 1), seed=0))
    with torch.no_grad():  # terminal value 0 everywhere: only the futures decide
        agent.critics.weights[-1].zero_()
        agent.critics.biases[-1].zero_()
    return agent


@pytest.mark.parametrize("held", [0.0, 1.0])
def test_planner_picks_the_cvar_optimal_position_not_the_mean_optimal_one(held):
    # 40 futures: 38 of +2 % and 2 of −30 % on the next token, nothing after. Long earns +0.4 % on average (after
    # 15 bps, +0.25 %) but loses 30 % in the worst 5 % (2 futures); short loses 2 % in its worst 5 %; flat loses 0.
    futures = np.zeros((40, 3), dtype=np.float32)
    futures[:, 0] = 0.02
    futures[:2, 0] = -0.30
    row = AgentRow(1_700_000_000_000, np.zeros(2, np.float32), np.zeros(1, np.float32), np.zeros(1, np.float32),
                   futures)
    assert abs(decide(_toy_agent(0.05), row, held)) < 0.05  # CVaR 5 %: flat
    assert decide(_toy_agent(1.0), row, held) > 0.9  # the mean objective would go long


def _planner_and_data():
    data = synthetic_agent_data(T=30, D=3, N=16, H=3, seed=5, n_gaps=2)
    agent = CVaRPlannerAgent(PlannerSpec(CVaRPlannerConfig(mppi=FAST), data.dims, seed=4))
    torch.manual_seed(1)
    with torch.no_grad():
        agent.critics.weights[-1].normal_(0, 0.3)
    agent.set_normalizer(ObsNormalizer.fit([data], 10.0))
    return agent, data


def test_planner_decisions_are_deterministic_causal_and_survive_save_load(tmp_path):
    agent, data = _planner_and_data()
    positions = agent_positions(agent, data)
    np.testing.assert_array_equal(agent_positions(agent, data), positions)  # same rows → same decisions
    assert np.abs(positions).max() <= 1 and np.unique(positions).size > 5
    t = 15
    future = {n: getattr(data, n).copy() for n in ("embedding", "mv_summary", "past_returns", "mv_futures",
                                                   "next_return")}
    for name in ("embedding", "mv_summary", "past_returns", "mv_futures"):
        future[name][t + 1:] *= -2.0
    future["next_return"][t:] = 0.3
    changed = AgentData(end_timestamp=data.end_timestamp, tradable=data.tradable, **future)
    changed_positions = agent_positions(agent, changed)
    np.testing.assert_array_equal(changed_positions[:t + 1], positions[:t + 1])
    assert not np.array_equal(changed_positions[t + 1:], positions[t + 1:])
    loaded = CVaRPlannerAgent.load(agent.save(tmp_path / "planner.safetensors"))
    assert loaded.config == agent.config
    assert all(torch.equal(a, b) for a, b in zip(agent.state_dict().values(), loaded.state_dict().values()))
    np.testing.assert_array_equal(agent_positions(loaded, data), positions)


def test_planner_bad_input_is_named():
    agent, data = _planner_and_data()
    no_futures = AgentData(**{**{f.name: getattr(data, f.name) for f in dataclasses.fields(data)},
                              "mv_futures": None})
    with pytest.raises(ValueError, match="the CVaR planner needs mv_futures"):
        agent_positions(agent, no_futures)
    short = AgentData(**{**{f.name: getattr(data, f.name) for f in dataclasses.fields(data)},
                         "mv_futures": data.mv_futures[:, :, :2]})
    with pytest.raises(ValueError, match="mv_futures cover 2 steps, the planner's horizon is 3"):
        agent_positions(agent, short)
    with pytest.raises(ValueError, match="past_returns width 3 differs from the 8"):
        agent_positions(agent, synthetic_agent_data(T=10, D=3, R=3))
