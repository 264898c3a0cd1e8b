"""The one reward arithmetic of the agents: the env, the vectorised env, the planner's scoring and the evaluation
all call ``step_reward``, so a trajectory scores the same everywhere (bit for bit: the same float64 operations).

reward_t = p_t · r_t − c · |p_t − p_{t−1}| − λ · (p_t · r_t)²

p_t is the effective position held from t to t+1 (the decided target, or 0 across a candle gap: see the gap policy
in ``data.py``), r_t the log return earned from t to t+1 (0 across a gap), c = (fee_bps + slippage_bps) / 1e4, λ the
optional risk penalty. The log return of a position p, log(1 + p·(e^r − 1)), is approximated by p · r: exact for
p ∈ {0, 1}, off by p(1 − p)·r²/2 otherwise (1.25e-5 for p = 0.5 and a 1 % move, 1e-4 for a full short).
"""

from __future__ import annotations

import numpy as np

from fin_ia_models.agents.config import EnvConfig
from fin_ia_models.agents.data import AgentData


def step_reward(position, previous, earned_return, cost_rate: float, risk_penalty: float):
    """Reward of holding ``position`` from t to t+1 after holding ``previous``; floats or equal-shape arrays."""
    pnl = position * earned_return
    net = pnl - cost_rate * abs(position - previous)
    return net - risk_penalty * pnl * pnl if risk_penalty else net  # λ = 0 would subtract an exact 0: skip the work


def check_positions(positions: np.ndarray, n: int) -> np.ndarray:
    """``positions`` as (n,) float64; a ValueError naming the problem if the shape, finiteness or range is wrong."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.shape != (n,):
        raise ValueError(f"positions must have shape ({n},), got {positions.shape}")
    if not np.isfinite(positions).all():
        raise ValueError(f"positions must be finite; first bad index {int(np.argmax(~np.isfinite(positions)))}")
    if np.abs(positions).max() > 1.0:
        i = int(np.argmax(np.abs(positions)))
        raise ValueError(f"positions must lie in [-1, 1]; position[{i}] = {positions[i]}")
    return positions


def net_returns(positions: np.ndarray, data: AgentData, config: EnvConfig) -> np.ndarray:
    """(T,) per-step net log returns (after costs, no risk penalty, no reward scale) of the ``positions`` (T,)
    decided at each row of ``data``, starting flat, under the gap policy: what a backtest books."""
    held = data.effective_positions(check_positions(positions, len(data)))
    previous = np.concatenate([[0.0], held[:-1]])
    return step_reward(held, previous, data.earned_return(), config.cost_rate, 0.0)
