"""LatentTradingVecEnv gives exactly the trajectories of N single LatentTradingEnvs (through SB3's DummyVecEnv, with
the same seeds and actions), with its numba kernel and with its numpy path, rejects bad actions by env (changing
nothing), and checkpoints its state exactly."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from fin_ia_models.agents.config import EnvConfig
from fin_ia_models.agents.env import LatentTradingEnv
from fin_ia_models.agents.features import ObsNormalizer
from fin_ia_models.agents.synthetic import synthetic_agent_data
from fin_ia_models.agents.vec_env import LatentTradingVecEnv

CONFIG = EnvConfig(episode_len=17, risk_penalty=0.5, reward_scale=100.0)


@pytest.fixture(scope="module")
def windows():
    return [synthetic_agent_data(T=40, D=3, seed=1, n_gaps=3, symbol="A"),
            synthetic_agent_data(T=25, D=3, seed=2, symbol="B"),
            synthetic_agent_data(T=90, D=3, seed=3, n_gaps=5, symbol="C")]


KERNELS = pytest.mark.parametrize("kernel", ["numba", "numpy"])


@KERNELS
@pytest.mark.parametrize("risk", [0.0, 0.5])
def test_vectorised_equals_single_envs(windows, kernel, risk):
    config = EnvConfig(episode_len=17, risk_penalty=risk, reward_scale=100.0)
    normalizer = ObsNormalizer.fit(windows, config.obs_clip)
    assignment = [0, 1, 2, 2, 0, 1, 2]
    vec = LatentTradingVecEnv(windows, config, normalizer, n_envs=7, assignment=assignment, kernel=kernel)
    single = DummyVecEnv([lambda w=windows[i]: LatentTradingEnv(w, config, normalizer) for i in assignment])
    vec.seed(11)
    single.seed(11)
    obs_vec, obs_single = vec.reset(), single.reset()
    np.testing.assert_array_equal(obs_vec, obs_single)
    rng = np.random.default_rng(0)
    done_count = 0
    for _ in range(3 * config.episode_len + 5):  # several auto-resets per env
        actions = rng.uniform(-1.5, 1.5, size=(7, 1)).astype(np.float32)  # some out of range: clipped alike
        o1, r1, d1, i1 = vec.step(actions)
        o2, r2, d2, i2 = single.step(actions)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        for a, b, done in zip(i1, i2, d1):
            if done:
                done_count += 1
                np.testing.assert_array_equal(a["terminal_observation"], b["terminal_observation"])
                assert a["TimeLimit.truncated"] and b["TimeLimit.truncated"]
    assert done_count == 7 * 3


@KERNELS
def test_bad_actions_name_the_env_and_change_nothing(windows, kernel):
    vec = LatentTradingVecEnv(windows, CONFIG, n_envs=3, kernel=kernel)
    vec.seed(0)
    vec.reset()
    before = vec.get_state()
    with pytest.raises(ValueError, match=r"env\(s\) \[1, 2\] got \[nan, inf\]"):
        vec.step(np.array([[0.0], [np.nan], [np.inf]]))
    assert vec.get_state() == before
    with pytest.raises(ValueError, match="one target position per env \\(3\\)"):
        vec.step(np.zeros((2, 1)))
    with pytest.raises(ValueError, match="has 25 rows: an episode of episode_len = 30"):
        LatentTradingVecEnv(windows, EnvConfig(episode_len=30))
    with pytest.raises(ValueError, match="window 1 \\(B\\) has widths"):
        LatentTradingVecEnv([windows[0], synthetic_agent_data(T=40, D=4, symbol="B")], CONFIG)


@KERNELS
def test_state_round_trip_continues_exactly(windows, kernel):
    vec = LatentTradingVecEnv(windows, CONFIG, n_envs=4, kernel=kernel)
    vec.seed(3)
    vec.reset()
    rng = np.random.default_rng(1)
    for _ in range(20):
        vec.step(rng.uniform(-1, 1, (4, 1)))
    state = vec.get_state()
    actions = rng.uniform(-1, 1, (30, 4, 1))
    first = [vec.step(a) for a in actions]
    other = LatentTradingVecEnv(windows, CONFIG, n_envs=4, kernel=kernel)
    other.set_state(state)
    second = [other.step(a) for a in actions]
    for (o1, r1, d1, _), (o2, r2, d2, _) in zip(first, second):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
