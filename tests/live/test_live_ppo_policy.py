"""A registered PPO agent (``PPOPolicy``, the kind the registry stores) drives the live engine: its costs and
horizon are read from its spec, and it decides like the batch path."""

from __future__ import annotations

import numpy as np
import pytest

from fin_ia_models.agents import EnvConfig, ObsNormalizer, PPOAgent, PPOConfig
from fin_ia_models.agents.ppo import build_ppo_model
from fin_ia_models.agents.ppo_policy import PPOPolicy
from fin_ia_models.agents.vec_env import LatentTradingVecEnv
from fin_ia_models.live.batch import batch_agent_data, batch_decisions
from fin_ia_models.live.engine import DecisionEngine
from fin_ia_models.live.stack import ModelStack
from tests.live.conftest import MONTH_MS

pytestmark = pytest.mark.slow


def test_a_registered_ppo_policy_decides_in_the_engine_like_the_batch_path(stack, market):
    data = batch_agent_data(stack, market)
    normalizer = ObsNormalizer.fit([data], 10.0)
    env = EnvConfig(fee_bps=7.0, episode_len=32)
    agent = PPOAgent(build_ppo_model(LatentTradingVecEnv([data], env, normalizer), PPOConfig(), 0), normalizer, env)
    ppo = ModelStack(stack.tokenizer, stack.jepa, stack.multiverse, PPOPolicy.from_agent(agent, seed=0), seed=0)
    assert ppo.cost_rate == pytest.approx(env.cost_rate) and ppo.planner_horizon == 1
    start = int(market["timestamp"].iloc[-1]) - MONTH_MS
    rows, batch = batch_decisions(ppo, market, start)
    engine = DecisionEngine(ppo)
    engine.warm_start("TEST/USDT", market[market["timestamp"] < start])
    decisions = [d for d in engine.run("TEST/USDT", market[market["timestamp"] >= start]) if d.event == "decide"]
    np.testing.assert_array_equal([d.token_end for d in decisions], rows.end_timestamp)
    np.testing.assert_allclose([d.position for d in decisions], batch, rtol=0, atol=5e-5)
