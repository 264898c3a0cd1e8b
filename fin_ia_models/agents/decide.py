"""One decision interface for every agent, so an evaluation engine or the live path runs any of them the same way.

An agent is anything with a fitted ``normalizer`` (``ObsNormalizer``: the widths it was trained on) and
``act(row: AgentRow, position: float) -> float``: the target position for step t from what is known at t (row t of
the data, without its label) and the position currently held. Both agents here (``PPOAgent``,
``CVaRPlannerAgent``) are deterministic: the same row and position give the same decision, on any machine state.

``agent_positions`` runs an agent over a whole window: step by step, feeding back the position really held (the
decision, or 0 after a candle gap: the gap policy of ``data.py``). Position t depends on rows ≤ t only (tested by
perturbing the future). ``performance`` scores positions with the env's cost arithmetic.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from fin_ia_models.agents.config import EnvConfig
from fin_ia_models.agents.cvar import cvar_lower_ref
from fin_ia_models.agents.data import AgentData, AgentRow
from fin_ia_models.agents.features import ObsNormalizer
from fin_ia_models.agents.rewards import net_returns

YEAR_MS = 365 * 24 * 3_600_000


class TradingAgent(Protocol):
    normalizer: ObsNormalizer

    def act(self, row: AgentRow, position: float) -> float: ...


def decide(agent: TradingAgent, row: AgentRow, position: float) -> float:
    """The target position in [−1, 1] ``agent`` takes at ``row`` while holding ``position``.

    ValueError (naming the values) when the row's widths differ from the agent's training data or ``position`` is
    not a finite number in [−1, 1].
    """
    dims = (len(row.embedding), len(row.mv_summary), len(row.past_returns))
    agent.normalizer.check(dims, f"row at {row.end_timestamp}")
    if not (math.isfinite(position) and -1.0 <= position <= 1.0):
        raise ValueError(f"position held must be a finite number in [-1, 1], got {position}")
    target = agent.act(row, float(position))
    if not (math.isfinite(target) and -1.0 <= target <= 1.0):  # an agent bug, never passed on to a backtest
        raise RuntimeError(f"{type(agent).__name__} returned {target} at {row.end_timestamp}, not a position in "
                           "[-1, 1]")
    return target


def agent_positions(agent: TradingAgent, data: AgentData) -> np.ndarray:
    """(T,) float64 decided positions of ``agent`` over ``data``, starting flat; position t uses rows ≤ t only."""
    agent.normalizer.check(data.dims, data.symbol or "data")
    positions = np.empty(len(data))
    held = 0.0
    for t in range(len(data)):
        positions[t] = decide(agent, data.row(t), held)
        held = positions[t] if data.tradable[t] else 0.0  # flat across a gap
    return positions


def periods_per_year(datas: list[AgentData]) -> float:
    """Token steps per year, from the median spacing of ``end_timestamp`` (16 h tokens → 547.5)."""
    steps = np.concatenate([np.diff(d.end_timestamp) for d in datas])
    return YEAR_MS / float(np.median(steps))


def performance(net: np.ndarray, held: np.ndarray, trades: np.ndarray, per_year: float,
                alpha: float = 0.05) -> dict[str, float]:
    """Scores of per-step net log returns ``net`` (n,) earned by the positions ``held`` (n,) after trading
    ``trades`` = |Δposition| (n,): ``net_reward`` (their sum),
    ``mean_return``, ``sharpe`` (annualised; NaN when the returns are constant, e.g. always flat: undefined, not
    0), ``cvar05`` (mean of the worst ``alpha`` share of steps), ``turnover`` (mean |Δposition| per step) and
    ``exposure`` (mean |position|)."""
    if len(net) < 2:
        raise ValueError(f"performance needs at least 2 returns, got {len(net)}")
    std = float(np.std(net, ddof=1))
    sharpe = float(np.mean(net)) / std * math.sqrt(per_year) if std > 0 else math.nan
    return {"net_reward": float(np.sum(net)), "mean_return": float(np.mean(net)), "sharpe": sharpe,
            "cvar05": float(cvar_lower_ref(net, alpha)),
            "turnover": float(np.mean(trades)), "exposure": float(np.mean(np.abs(held)))}


def evaluate_agent(agent: TradingAgent, datas: list[AgentData], config: EnvConfig) -> dict[str, float]:
    """``performance`` of ``agent`` run over each window of ``datas`` (each starting flat), pooled."""
    nets, held, trades = [], [], []
    for data in datas:
        positions = agent_positions(agent, data)
        nets.append(net_returns(positions, data, config))
        held.append(data.effective_positions(positions))
        trades.append(np.abs(np.diff(held[-1], prepend=0.0)))
    return performance(*(np.concatenate(parts) for parts in (nets, held, trades)), periods_per_year(datas))
