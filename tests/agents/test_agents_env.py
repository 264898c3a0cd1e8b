"""LatentTradingEnv: reward arithmetic on a hand-made path (costs, clip, gap, risk penalty, scale), position bounds,
bad actions and windows, causality by perturbing the future, gymnasium's and SB3's env checkers."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from fin_ia_models.agents.config import EnvConfig
from fin_ia_models.agents.data import AgentData
from fin_ia_models.agents.env import LatentTradingEnv
from fin_ia_models.agents.features import ObsNormalizer
from fin_ia_models.agents.rewards import net_returns
from fin_ia_models.agents.synthetic import synthetic_agent_data


def _hand_path() -> AgentData:
    """5 rows; the step 3 → 4 spans a candle gap."""
    return AgentData(end_timestamp=np.arange(5) * 57_600_000, embedding=np.arange(10.0).reshape(5, 2),
                     mv_summary=np.ones((5, 1)), past_returns=np.zeros((5, 1)),
                     next_return=np.array([0.01, -0.02, 0.03, np.nan, 0.005]),
                     tradable=np.array([True, True, True, False, True]))


ACTIONS = [0.5, -1.0, 2.0, 0.7]  # 2.0 is clipped to 1; 0.7 falls on the gap and is flattened


@pytest.mark.parametrize("risk, scale, expected", [
    # p·r − 0.0015·|Δp|: 0.5·0.01 − 0.0015·0.5; −1·−0.02 − 0.0015·1.5; 1·0.03 − 0.0015·2; gap: 0 − 0.0015·1
    (0.0, 1.0, [0.00425, 0.01775, 0.027, -0.0015]),
    # − 2·(p·r)²: 2·0.005² = 5e-5, 2·0.02² = 8e-4, 2·0.03² = 1.8e-3, 0
    (2.0, 1.0, [0.0042, 0.01695, 0.0252, -0.0015]),
    (0.0, 100.0, [0.425, 1.775, 2.7, -0.15]),
])
def test_reward_arithmetic_on_a_hand_made_path(risk, scale, expected):
    config = EnvConfig(fee_bps=10, slippage_bps=5, risk_penalty=risk, episode_len=4, reward_scale=scale)
    env = LatentTradingEnv(_hand_path(), config, mode="sequential")
    obs, info = env.reset(seed=0)
    assert obs[-1] == 0.0 and info["t"] == 0
    rewards, positions, truncations = [], [obs[-1]], []
    for action in ACTIONS:
        obs, reward, terminated, truncated, info = env.step(np.array([action], dtype=np.float32))
        rewards.append(reward)
        positions.append(obs[-1])
        truncations.append(truncated)
        assert not terminated
    np.testing.assert_allclose(rewards, expected, rtol=1e-12, atol=1e-15)
    assert positions == [0.0, 0.5, -1.0, 1.0, 0.0]  # held position in the observation, flat after the gap
    assert truncations == [False, False, False, True]
    if risk == 0 and scale == 1:  # the backtest arithmetic books the same net returns
        booked = net_returns(np.array(ACTIONS[:3] + [0.7, 0.0]).clip(-1, 1), _hand_path(), config)
        np.testing.assert_allclose(booked[:4], expected, rtol=1e-12, atol=1e-15)


def test_bad_actions_and_windows_are_named():
    env = LatentTradingEnv(_hand_path(), EnvConfig(episode_len=4))
    env.reset(seed=0)
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="action must be a finite target position"):
            env.step(np.array([bad]))
    with pytest.raises(ValueError, match="one target position, got shape \\(2,\\)"):
        env.step(np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="has 5 rows: an episode of episode_len = 5 steps needs at least 6"):
        LatentTradingEnv(_hand_path(), EnvConfig(episode_len=5))
    with pytest.raises(ValueError, match="start 1 outside 0..0"):
        env.reset(options={"start": 1})
    env.reset(seed=0)
    for _ in range(4):
        env.step(np.array([0.0]))
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.array([0.0]))


def test_positions_stay_in_bounds_for_any_action():
    data = synthetic_agent_data(T=200, D=2, seed=3)
    env = LatentTradingEnv(data, EnvConfig(episode_len=150))
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for action in rng.normal(0, 5, size=150):
        obs, reward, _, _, info = env.step(np.array([action]))
        assert -1.0 <= obs[-1] <= 1.0 and info["position"] == np.clip(action, -1, 1) and np.isfinite(reward)


def _rollout(data: AgentData, normalizer: ObsNormalizer, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    env = LatentTradingEnv(data, EnvConfig(episode_len=len(actions)), normalizer, mode="sequential")
    observations = [env.reset(seed=0)[0]]
    rewards = []
    for action in actions:
        obs, reward, *_ = env.step(np.array([action]))
        observations.append(obs)
        rewards.append(reward)
    return np.array(observations), np.array(rewards)


def test_observations_and_rewards_are_causal():
    data = synthetic_agent_data(T=100, D=3, seed=4, n_gaps=3)
    normalizer = ObsNormalizer.fit([data], 10.0)  # fixed: the training window's statistics
    actions = np.random.default_rng(1).uniform(-1, 1, size=99)
    obs, rewards = _rollout(data, normalizer, actions)
    t = 50
    future = {name: getattr(data, name).copy() for name in ("embedding", "mv_summary", "past_returns",
                                                            "mv_futures", "next_return")}
    for name in ("embedding", "mv_summary", "past_returns", "mv_futures"):
        future[name][t + 1:] += 7.0  # every feature after t
    future["next_return"][t:] *= -3.0  # every label from t on
    changed = AgentData(**{**{n: getattr(data, n) for n in ("end_timestamp", "tradable", "mv_summary_names")},
                           **future})
    obs2, rewards2 = _rollout(changed, normalizer, actions)
    np.testing.assert_array_equal(obs2[:t + 1], obs[:t + 1])  # observations up to t
    np.testing.assert_array_equal(rewards2[:t], rewards[:t])  # rewards before t
    assert data.tradable[t] and rewards2[t] != rewards[t]  # the reward at t reads next_return[t]
    only_t = data.next_return.copy()
    only_t[t + 1:] = 0.123  # labels after t do not enter the reward at t
    obs3, rewards3 = _rollout(AgentData(**{**{n: getattr(data, n) for n in (
        "end_timestamp", "tradable", "embedding", "mv_summary", "past_returns", "mv_futures")},
        "next_return": only_t}), normalizer, actions)
    np.testing.assert_array_equal(rewards3[:t + 1], rewards[:t + 1])
    np.testing.assert_array_equal(obs3, obs)


def test_random_starts_are_seeded_and_sequential_mode_tiles():
    data = synthetic_agent_data(T=300, D=2, seed=5)
    starts = [LatentTradingEnv(data, EnvConfig(episode_len=50)).reset(seed=s)[1]["t"] for s in (7, 7, 8)]
    assert starts[0] == starts[1] != starts[2]
    env = LatentTradingEnv(data, EnvConfig(episode_len=100), mode="sequential")
    assert [env.reset()[1]["t"] for _ in range(4)] == [0, 100, 0, 100]  # 300 rows: windows at 0 and 100 (+1 row)


def test_env_checkers_pass():
    data = synthetic_agent_data(T=120, D=4, seed=6, n_gaps=2)
    gymnasium_check_env(LatentTradingEnv(data, EnvConfig(episode_len=32)), skip_render_check=True)
    sb3_check_env(LatentTradingEnv(data, EnvConfig(episode_len=32)), warn=True)
