"""``LatentTradingEnv``: a gymnasium environment where one step is one token (one patch of 16 hourly candles) of one
symbol, the observation is latent (JEPA embedding + multiverse summary + recent returns + position) and the action
is a target position in [−1, 1].

Assumption: the market does not react to the agent. Prices, embeddings and multiverse samples are a recorded path;
the agent's orders move nothing (no impact beyond the fixed slippage charge, no fills refused). This is what makes
an episode a replay of stored arrays, lets the vectorised env be exact, and lets the planner use the multiverse as
its world model. It is reasonable for position sizes far below BTC/ETH hourly volume; it is wrong for large size.

Step t (t = start … start + episode_len − 1), with p the position held from t−1 (0 at an episode's start):
- observation o_t = [normalised features of row t, p] (float32; normalisation: ``features.py``, training stats only)
- action a → target position p' = clip(a, −1, 1): an out-of-range action is clipped (documented, never an error,
  as SB3 clips Gaussian samples the same way); a NaN/inf action is a ValueError.
- across a candle gap (``tradable[t]`` False) the position held is forced to 0 (gap policy of ``data.py``): p' = 0
- reward = reward_scale · step_reward(p', p, r_t) (``rewards.py``), r_t = ``next_return[t]`` (0 across a gap)
- the next observation is row t+1: an episode of L steps needs L + 1 rows. The episode ends by time limit
  (``truncated``), never ``terminated``: the market goes on after the window.

Causal: o_t reads row t only (and the fixed normaliser); the reward at t reads ``next_return[t]`` only.
Resets draw the window start uniformly from the env's seeded generator (``mode="random"``) or walk the data in
consecutive windows from row 0 (``mode="sequential"``, for evaluation); ``options={"start": s}`` forces a start.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from fin_ia_models.agents.config import EnvConfig
from fin_ia_models.agents.data import AgentData
from fin_ia_models.agents.features import ObsNormalizer
from fin_ia_models.agents.rewards import step_reward

MODES = ("random", "sequential")


def n_starts(data: AgentData, episode_len: int) -> int:
    """How many episode windows fit in ``data``; a ValueError naming both numbers if none does."""
    if len(data) < episode_len + 1:
        raise ValueError(f"{data.symbol or 'data'} has {len(data)} rows: an episode of episode_len = {episode_len} "
                         f"steps needs at least {episode_len + 1} (its decisions and the observation after the last)")
    return len(data) - episode_len


def parse_action(action: Any) -> float:
    """One target position from an action (array of shape (1,), or a number): finite, clipped to [−1, 1]."""
    if isinstance(action, np.ndarray) and action.shape == (1,):
        value = float(action[0])
    else:
        array = np.asarray(action, dtype=np.float64)
        if array.size != 1:
            raise ValueError(f"action must hold one target position, got shape {array.shape}")
        value = float(array.reshape(-1)[0])
    if not math.isfinite(value):
        raise ValueError(f"action must be a finite target position in [-1, 1], got {value}")
    return -1.0 if value < -1.0 else (1.0 if value > 1.0 else value)


def observation_space(normalizer: ObsNormalizer) -> gym.spaces.Box:
    """Normalised features in ±clip, then the position in [−1, 1]."""
    low = np.full(normalizer.obs_dim, -normalizer.clip, dtype=np.float32)
    high = -low
    low[-1], high[-1] = -1.0, 1.0
    return gym.spaces.Box(low, high, dtype=np.float32)


ACTION_SPACE = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)


class LatentTradingEnv(gym.Env):
    """One symbol's ``AgentData`` replayed in episodes of ``config.episode_len`` token steps (module docstring).

    ``normalizer``: the training window's statistics; None fits them on ``data`` itself (right only when ``data`` is
    the training window).
    """

    metadata = {"render_modes": []}

    def __init__(self, data: AgentData, config: EnvConfig = EnvConfig(), normalizer: ObsNormalizer | None = None,
                 mode: str = "random") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.data, self.config, self.mode = data, config, mode
        self.normalizer = normalizer or ObsNormalizer.fit([data], config.obs_clip)
        self._n_starts = n_starts(data, config.episode_len)
        self._table = self.normalizer.observations(data)  # (T, F + 1), position column filled per step
        self._returns = data.earned_return().tolist()  # (T,) as python floats (faster to index), 0 across gaps
        self._stamps = data.end_timestamp.tolist()
        self._tradable = data.tradable.tolist()
        self.observation_space = observation_space(self.normalizer)
        self.action_space = ACTION_SPACE
        self.render_mode = None
        self._cost, self._risk, self._scale = config.cost_rate, config.risk_penalty, config.reward_scale
        self._t = self._end = 0
        self._position = 0.0
        self._next_sequential = 0
        self._started = False

    def _observation(self) -> np.ndarray:
        obs = self._table[self._t].copy()
        obs[-1] = self._position
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if options and "start" in options:
            start = int(options["start"])
            if not 0 <= start < self._n_starts:
                raise ValueError(f"start {start} outside 0..{self._n_starts - 1} for {len(self.data)} rows and "
                                 f"episode_len {self.config.episode_len}")
        elif self.mode == "random":
            start = int(self.np_random.integers(0, self._n_starts))
        else:
            start = self._next_sequential
        if self.mode == "sequential":  # the next window follows this one, wrapping to row 0 at the end
            following = start + self.config.episode_len
            self._next_sequential = following if following < self._n_starts else 0
        self._t, self._end, self._position, self._started = start, start + self.config.episode_len, 0.0, True
        return self._observation(), {"t": start, "end_timestamp": self._stamps[start]}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self._started:
            raise RuntimeError("call reset() before step(): the episode has ended or never started")
        t, previous = self._t, self._position
        target = parse_action(action)
        if not self._tradable[t]:  # closed across a gap (the action is still validated)
            target = 0.0
        net = step_reward(target, previous, self._returns[t], self._cost, 0.0)
        reward = self._scale * step_reward(target, previous, self._returns[t], self._cost, self._risk)
        self._position, self._t = target, t + 1
        truncated = self._t == self._end
        self._started = not truncated
        info = {"t": t, "end_timestamp": self._stamps[t], "position": target, "net_return": net}
        return self._observation(), reward, False, truncated, info
