"""The common decision interface and the scores used for model choice: a rule agent run by ``agent_positions``
books in ``net_returns`` exactly what the env pays out step by step; ``performance`` against hand-computed values;
the validation selector's ranking (NaN Sharpe last, ties keep the earlier state)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fin_ia_models.agents.config import EnvConfig
from fin_ia_models.agents.data import AgentRow
from fin_ia_models.agents.decide import agent_positions, decide, performance, periods_per_year
from fin_ia_models.agents.env import LatentTradingEnv
from fin_ia_models.agents.features import ObsNormalizer
from fin_ia_models.agents.rewards import net_returns
from fin_ia_models.agents.selection import ValidationSelector
from fin_ia_models.agents.synthetic import synthetic_agent_data


class SignAgent:
    """Half a unit in the direction of embedding channel 0, a third of the way from the position held."""

    def __init__(self, normalizer: ObsNormalizer) -> None:
        self.normalizer = normalizer

    def act(self, row: AgentRow, position: float) -> float:
        return position + (0.5 * np.sign(row.embedding[0]) - position) / 3


def test_agent_positions_book_what_the_env_pays():
    data = synthetic_agent_data(T=120, D=2, seed=8, n_gaps=4)
    config = EnvConfig(episode_len=119)
    agent = SignAgent(ObsNormalizer.fit([data], config.obs_clip))
    positions = agent_positions(agent, data)
    env = LatentTradingEnv(data, config, agent.normalizer, mode="sequential")
    obs, _ = env.reset(seed=0)
    paid = []
    for t in range(119):
        assert positions[t] == decide(agent, data.row(t), float(obs[-1]))  # the env shows the position held
        obs, reward, *_ = env.step(np.array([positions[t]]))
        paid.append(reward)
    np.testing.assert_array_equal(net_returns(positions, data, config)[:119], paid)  # the same float64 operations
    assert (data.effective_positions(positions)[~data.tradable] == 0).all()


def test_performance_by_hand():
    net = np.array([0.01, -0.02, 0.03, 0.0])
    held = np.array([1.0, -1.0, 0.5, 0.0])
    trades = np.abs(np.diff(held, prepend=0.0))  # 1, 2, 1.5, 0.5
    scores = performance(net, held, trades, per_year=100.0)
    std = np.sqrt(((net - 0.005) ** 2).sum() / 3)
    assert scores["net_reward"] == pytest.approx(0.02) and scores["mean_return"] == pytest.approx(0.005)
    assert scores["sharpe"] == pytest.approx(0.005 / std * 10.0)
    assert scores["cvar05"] == pytest.approx(-0.02)  # 5 % of 4 steps: the worst one
    assert scores["turnover"] == pytest.approx(1.25) and scores["exposure"] == pytest.approx(0.625)
    assert math.isnan(performance(np.zeros(5), np.zeros(5), np.zeros(5), 100.0)["sharpe"])  # flat: undefined
    with pytest.raises(ValueError, match="at least 2 returns, got 1"):
        performance(np.zeros(1), np.zeros(1), np.zeros(1), 100.0)
    assert periods_per_year([synthetic_agent_data(T=10)]) == pytest.approx(365 * 24 / 16)


def test_validation_selector_ranks_nan_last_and_keeps_the_earlier_on_ties():
    selector = ValidationSelector([synthetic_agent_data(T=10)], EnvConfig(), "sharpe")
    assert selector.offer({"val_sharpe": math.nan, "val_net_reward": 0.0}, 1, lambda: "flat")
    assert selector.offer({"val_sharpe": -3.0, "val_net_reward": -1.0}, 2, lambda: "loser")  # defined beats NaN
    assert not selector.offer({"val_sharpe": -3.0, "val_net_reward": 5.0}, 3, lambda: "tie")
    assert not selector.offer({"val_sharpe": math.nan, "val_net_reward": 9.0}, 4, lambda: "flat again")
    assert selector.best_state == "loser" and selector.final_metrics()["best_step"] == 2.0
    by_reward = ValidationSelector([synthetic_agent_data(T=10)], EnvConfig(), "net_reward")
    by_reward.offer({"val_sharpe": 5.0, "val_net_reward": 0.1}, 1, lambda: "a")
    assert by_reward.offer({"val_sharpe": 1.0, "val_net_reward": 0.2}, 2, lambda: "b")
    with pytest.raises(RuntimeError, match="no validation evaluation ran"):
        ValidationSelector([synthetic_agent_data(T=10)], EnvConfig(), "sharpe").final_metrics()
