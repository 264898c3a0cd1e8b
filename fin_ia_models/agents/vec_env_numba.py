"""Numba kernel of ``LatentTradingVecEnv.step``: clip, gap flattening, reward, position and observation update of all
envs in one compiled call (the numpy path takes ~25 array operations, each paying Python's per-call overhead).

Same arithmetic, in the same order, as ``rewards.step_reward`` and the numpy path, without ``fastmath`` (no
reassociation, no fused multiply-add), so results are bit-identical to both and to the single env (tested).
``numba`` is optional: ``build_step_kernel`` imports it lazily and the env falls back to numpy without it. The
compiled kernel is cached on disk (numba's ``cache=True``: beside this file, or in the user cache when that is
read-only), so only the first process on a machine pays the compilation.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def build_step_kernel():
    """Compile (once per process) and return the step kernel; ImportError if numba is missing."""
    import numba

    return numba.njit(fastmath=False, cache=True)(_step)  # compiled once per machine (~5 s), then loaded


def _step(actions, row, end, position, episode_return, table, returns, opened, cost, risk, scale, obs, rewards):
    """actions (n,) float64; row/end (n,) int64; position/episode_return (n,) float64 (updated in place);
    table (ΣT, F + 1) float32; returns/opened (ΣT,) float64; obs (n, F + 1) and rewards (n,) float32 (written).
    Returns −1, or the index of the first non-finite action (then nothing was changed)."""
    n = actions.shape[0]
    for i in range(n):
        if not np.isfinite(actions[i]):
            return i
    for i in range(n):
        target = min(max(actions[i], -1.0), 1.0) * opened[row[i]] + 0.0  # clip; flat across a gap; −0.0 → 0.0
        pnl = target * returns[row[i]]
        net = pnl - cost * abs(target - position[i])
        if risk != 0.0:
            net = net - risk * pnl * pnl
        reward = scale * net
        rewards[i] = reward
        episode_return[i] += reward
        position[i] = target
        row[i] += 1
        obs[i, :] = table[row[i]]
        obs[i, -1] = target
    return -1
