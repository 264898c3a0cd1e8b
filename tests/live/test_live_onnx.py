"""ONNX graphs of the per-token networks against PyTorch, and the engine on onnxruntime against the PyTorch engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fin_ia_models.agents.data import AgentRow
from fin_ia_models.live.engine import DecisionEngine
from fin_ia_models.live.onnx_export import export_stack, grid_cvar, session
from fin_ia_models.live.onnx_runtime import OnnxPlannerAgent
from fin_ia_models.multiverse.model import row_noise
from tests.live.conftest import MONTH_MS, fit_normalizer, make_stack

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("predictor", ["stochastic", "flow"])
def test_onnx_graphs_match_pytorch(market, tmp_path, predictor):
    stack = fit_normalizer(make_stack(0, predictor=predictor), market)
    paths = export_stack(stack, tmp_path, decode="full")
    rng = np.random.default_rng(0)
    # token step: tokenizer + one encoder step from a non-zero state
    enc = stack.jepa.context_encoder
    states = enc.stack.init_state(1)
    for st in states:
        st.conv.normal_()
        st.ssm.normal_()
    patch = rng.normal(0, 1, (1, 16, 5)).astype(np.float32)
    exo = rng.normal(0, 1, (1, 2)).astype(np.float32)
    with torch.no_grad():
        idx, latent = stack.tokenizer.encode(torch.from_numpy(patch))
        emb, new = enc.step(idx, states, latent, torch.from_numpy(exo))
    feeds = {"patch": patch, "exo": exo}
    for i, st in enumerate(states):
        feeds[f"conv_{i}"], feeds[f"ssm_{i}"] = st.conv.numpy(), st.ssm.numpy()
    out = session(paths["token_step"]).run(None, feeds)
    assert out[0][0] == int(idx[0])
    np.testing.assert_allclose(out[1], latent.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[2], emb.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[4], new[0].ssm.numpy(), rtol=1e-4, atol=1e-5)
    # multiverse with the row's fixed noise: the same futures as MultiverseModel.sample
    mv = stack.multiverse
    features = rng.normal(0, 1, (1, mv.config.context_dim)).astype(np.float32)
    ts = np.array([1_700_000_000_000])
    traj = mv.sample(ts, features, stack.n_futures, mv.config.horizon, 0)
    noise = row_noise(0, ts, (stack.n_futures, mv.config.horizon, mv.predictor.noise_dim))[0]
    ids, v, returns = session(paths["multiverse"]).run(None, {"features": features, "noise": noise})
    assert (ids.reshape(traj.token_ids.shape) == traj.token_ids).mean() > 0.95  # a rounding flip may move a code
    np.testing.assert_allclose(returns.reshape(traj.candle_returns.shape), traj.candle_returns, rtol=1e-3, atol=1e-6)
    (targets,) = session(export_stack(stack, tmp_path / "analytic")["multiverse"]).run(
        None, {"features": features, "noise": noise})  # the graph without the decoder
    np.testing.assert_allclose(targets, v, rtol=1e-6, atol=1e-7)
    table_targets, table_ids = session(export_stack(stack, tmp_path / "table", "table")["multiverse"]).run(
        None, {"features": features, "noise": noise})  # the graph with the quantizer only (ids for the table)
    np.testing.assert_array_equal(table_ids, ids)
    np.testing.assert_array_equal(table_targets, targets)
    # the planner's critic grid
    x = torch.from_numpy(rng.normal(0, 1, sum(stack.agent.normalizer.dims)).astype(np.float32))
    from fin_ia_models.agents.planner import terminal_cvar

    grid = torch.linspace(-1, 1, stack.agent.config.planner.mppi.value_grid)
    with torch.no_grad():
        want = terminal_cvar(stack.agent.critics, x, grid, stack.agent.config.planner).double().numpy()
    (quantiles,) = session(paths["policy"]).run(None, {"features": x.numpy()})
    np.testing.assert_allclose(grid_cvar(quantiles, stack.agent), want, rtol=1e-4, atol=1e-7)
    emb_dim, summary_dim, n_past = stack.agent.normalizer.dims
    row = AgentRow(0, rng.normal(0, 1, emb_dim).astype(np.float32),
                   rng.normal(0, 0.01, summary_dim).astype(np.float32), rng.normal(0, 0.01, n_past).astype(np.float32),
                   traj.step_returns()[0].astype(np.float32))
    onnx_agent = OnnxPlannerAgent(stack.agent, paths["policy"])
    assert abs(onnx_agent.act(row, 0.3) - stack.agent.act(row, 0.3)) < 1e-4


@pytest.mark.parametrize("scale_inputs", [False, True])
def test_engine_on_onnxruntime_decides_like_pytorch(stack, market, tmp_path, scale_inputs):
    """Also with a Fin-JEPA that reads the patch scale inputs (the demo/cpu profiles' design)."""
    if scale_inputs:
        stack = fit_normalizer(make_stack(0, scale_inputs=True), market)
    start = int(market["timestamp"].iloc[-1]) - MONTH_MS
    out = {}
    for name, kwargs in (("torch", {}), ("onnx", {"onnx_dir": tmp_path})):
        engine = DecisionEngine(stack, **kwargs)
        engine.warm_start("TEST/USDT", market[market["timestamp"] < start])
        out[name] = engine.run("TEST/USDT", market[market["timestamp"] >= start])
    assert [d.event for d in out["onnx"]] == [d.event for d in out["torch"]]
    np.testing.assert_allclose([d.position for d in out["onnx"]], [d.position for d in out["torch"]], atol=1e-5)
    assert sum(d.event == "decide" for d in out["onnx"]) >= 40


def test_ppo_actor_on_onnxruntime_matches_sb3(tmp_path):
    from fin_ia_models.agents import EnvConfig, ObsNormalizer, PPOAgent, PPOConfig, synthetic_agent_data
    from fin_ia_models.agents.ppo import build_ppo_model
    from fin_ia_models.agents.vec_env import LatentTradingVecEnv
    from fin_ia_models.live.onnx_export import PPOActorNet, export
    from fin_ia_models.live.onnx_runtime import OnnxPPOAgent

    data = synthetic_agent_data(T=160, D=16, R=4)
    normalizer = ObsNormalizer.fit([data], 5.0)
    model = build_ppo_model(LatentTradingVecEnv([data], EnvConfig(), normalizer), PPOConfig(), 0)
    with torch.no_grad():  # a wider action mean than the fresh init gives, so the clip to [-1, 1] is exercised
        model.policy.action_net.weight.mul_(500.0)
    agent = PPOAgent(model, normalizer, EnvConfig())
    path = export(PPOActorNet(model.policy), (torch.zeros(1, normalizer.obs_dim),), tmp_path / "ppo.onnx", ["obs"],
                  ["position"])
    twin = OnnxPPOAgent(agent, path)
    got = [twin.act(data.row(t), p) for t in range(0, 64, 4) for p in (-0.5, 0.0, 1.0)]
    want = [agent.act(data.row(t), p) for t in range(0, 64, 4) for p in (-0.5, 0.0, 1.0)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert max(abs(g) for g in got) == 1.0 and np.ptp(got) > 0.5
