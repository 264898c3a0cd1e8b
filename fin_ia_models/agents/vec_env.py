"""``LatentTradingVecEnv``: many ``LatentTradingEnv`` episodes (windows of many symbols) stepped at once, as a
stable-baselines3 ``VecEnv`` over plain numpy arrays (no per-env objects, no pandas).

All windows' observation tables are concatenated into one (ΣT, F + 1) float32 array and their earned returns into
one (ΣT,) float64 array; env i is a row offset, a step counter, a position and its own generator. A step is one
compiled numba call over the n envs (``vec_env_numba.py``) or, without numba or with ``kernel="numpy"``, a handful of
numpy operations; both compute the same float64 operations in the same order. It is exact: env i gives the same
observations, rewards, truncations and terminal observations, bit for bit, as ``LatentTradingEnv(datas[
assignment[i]], config, normalizer)`` reset with the same seed and driven by the same actions (tested for both
paths), because all draw window starts with gymnasium's ``np_random(seed)`` generator and compute the arithmetic of
``rewards.step_reward``.

SB3 conventions: a finished episode is reset at once; its last observation is ``infos[i]["terminal_observation"]``
with ``infos[i]["TimeLimit.truncated"] = True`` (PPO bootstraps through it) and ``infos[i]["episode"]`` holds
{"r": return, "l": length} as SB3's Monitor would. Other steps have empty infos (speed).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium.utils.seeding import np_random
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from fin_ia_models.agents.config import EnvConfig
from fin_ia_models.agents.data import AgentData
from fin_ia_models.agents.env import ACTION_SPACE, n_starts, observation_space
from fin_ia_models.agents.features import ObsNormalizer, check_same_dims
from fin_ia_models.agents.rewards import step_reward


KERNELS = ("auto", "numba", "numpy")


def _numba_kernel(required: bool):
    try:
        from fin_ia_models.agents.vec_env_numba import build_step_kernel

        return build_step_kernel()
    except ImportError:
        if required:
            raise
        return None


def _raise_non_finite(actions: np.ndarray) -> None:
    bad = np.flatnonzero(~np.isfinite(actions))
    raise ValueError(f"actions must be finite target positions in [-1, 1]; env(s) {bad.tolist()} got "
                     f"{actions[bad].tolist()}")


class LatentTradingVecEnv(VecEnv):
    """``n_envs`` random-window episodes over ``datas``; env i replays ``datas[assignment[i]]`` (default i mod
    len(datas)). ``normalizer`` as in ``LatentTradingEnv`` (None: fitted on all of ``datas``). ``kernel``: "numba",
    "numpy", or "auto" (numba when installed)."""

    def __init__(self, datas: Sequence[AgentData], config: EnvConfig, normalizer: ObsNormalizer | None = None,
                 n_envs: int | None = None, assignment: Sequence[int] | None = None, kernel: str = "auto") -> None:
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        datas = list(datas)
        if not datas:
            raise ValueError("LatentTradingVecEnv needs at least one AgentData window")
        check_same_dims(datas)
        n_envs = len(datas) if n_envs is None else n_envs
        assignment = np.arange(n_envs) % len(datas) if assignment is None else np.asarray(assignment, np.int64)
        if n_envs < 1 or assignment.shape != (n_envs,) or assignment.min() < 0 or assignment.max() >= len(datas):
            raise ValueError(f"assignment must give each of n_envs = {n_envs} envs a window index in "
                             f"0..{len(datas) - 1}, got {assignment.tolist()}")
        self.config, self.normalizer = config, normalizer or ObsNormalizer.fit(datas, config.obs_clip)
        self.render_mode = None  # read by VecEnv.__init__ through get_attr
        super().__init__(n_envs, observation_space(self.normalizer), ACTION_SPACE)
        lengths = np.array([len(d) for d in datas])
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        starts = np.array([n_starts(d, config.episode_len) for d in datas])
        self._table = np.concatenate([self.normalizer.observations(d) for d in datas])  # (ΣT, F + 1)
        self._returns = np.concatenate([d.earned_return() for d in datas])  # (ΣT,) float64
        self._open = np.concatenate([d.tradable for d in datas]).astype(np.float64)  # (ΣT,) 1.0, or 0.0 at a gap
        self.assignment = assignment
        self._offset = offsets[assignment]  # (n,) first row of each env's window in the tables
        self._n_starts = starts[assignment]  # (n,)
        self._rngs: list[np.random.Generator | None] = [None] * n_envs
        self._row = np.zeros(n_envs, dtype=np.int64)  # (n,) current global row
        self._end = np.zeros(n_envs, dtype=np.int64)  # (n,) global row at which the episode is truncated
        self._position = np.zeros(n_envs, dtype=np.float64)  # (n,)
        self._episode_return = np.zeros(n_envs, dtype=np.float64)  # (n,) sum of rewards so far
        self.episodes_done = 0  # finished episodes over all envs (progress reporting)
        self._actions: np.ndarray | None = None
        self._reset_once = False  # stepping before the first reset would replay row 0 of the tables
        self._cost, self._risk, self._scale = config.cost_rate, config.risk_penalty, config.reward_scale
        self._kernel = None if kernel == "numpy" else _numba_kernel(required=kernel == "numba")

    # -- episodes ---------------------------------------------------------------------------------------------------
    def _start_episode(self, i: int, start: int | None = None) -> None:
        if start is None:
            start = int(self._rngs[i].integers(0, self._n_starts[i]))
        elif not 0 <= start < self._n_starts[i]:
            raise ValueError(f"start {start} outside 0..{self._n_starts[i] - 1} for env {i}")
        self._row[i] = self._offset[i] + start
        self._end[i] = self._row[i] + self.config.episode_len
        self._position[i] = 0.0
        self._episode_return[i] = 0.0

    def reset(self) -> np.ndarray:
        for i in range(self.num_envs):
            if self._seeds[i] is not None or self._rngs[i] is None:
                self._rngs[i] = np_random(self._seeds[i])[0]  # as gymnasium's Env.reset(seed=...)
            self._start_episode(i, self._options[i].get("start"))
        self._reset_seeds()
        self._reset_options()
        self._reset_once = True
        return self._observations()

    def _observations(self) -> np.ndarray:
        obs = self._table[self._row]  # (n, F + 1) a fresh copy (fancy indexing)
        obs[:, -1] = self._position
        return obs

    # -- stepping ---------------------------------------------------------------------------------------------------
    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if not self._reset_once:
            raise RuntimeError("call reset() before step(): LatentTradingVecEnv has no episode yet")
        actions = np.asarray(self._actions, dtype=np.float64)
        if actions.size != self.num_envs:
            raise ValueError(f"actions must hold one target position per env ({self.num_envs}), got shape "
                             f"{actions.shape}")
        actions = actions.reshape(self.num_envs)
        obs, reward = self._advance_numpy(actions) if self._kernel is None else self._advance_numba(actions)
        dones = self._row == self._end
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            for i in np.flatnonzero(dones):
                infos[i] = {"terminal_observation": obs[i].copy(), "TimeLimit.truncated": True,
                            "episode": {"r": float(self._episode_return[i]), "l": self.config.episode_len}}
                self._start_episode(i)
                obs[i] = self._table[self._row[i]]
                obs[i, -1] = 0.0
                self.episodes_done += 1
        return obs, reward, dones, infos

    def _advance_numpy(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not np.isfinite(actions).all():
            _raise_non_finite(actions)
        row = self._row
        # the documented clip (as LatentTradingEnv), then flat across a candle gap (gap policy of data.py); + 0.0
        # turns the −0.0 of a short times 0 into the 0.0 the single env holds
        target = np.minimum(np.maximum(actions, -1.0), 1.0) * self._open[row] + 0.0
        reward = self._scale * step_reward(target, self._position, self._returns[row], self._cost, self._risk)
        self._position = target
        self._row = row + 1
        self._episode_return += reward
        return self._observations(), reward.astype(np.float32)

    def _advance_numba(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        obs = np.empty((self.num_envs, self._table.shape[1]), dtype=np.float32)
        reward = np.empty(self.num_envs, dtype=np.float32)
        bad = self._kernel(actions, self._row, self._end, self._position, self._episode_return, self._table,
                           self._returns, self._open, self._cost, self._risk, self._scale, obs, reward)
        if bad >= 0:
            _raise_non_finite(actions)
        return obs, reward

    # -- checkpointing ----------------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Everything that decides the next steps: rows, ends, positions, episode returns, generator states."""
        return {"row": self._row.tolist(), "end": self._end.tolist(), "position": self._position.tolist(),
                "episode_return": self._episode_return.tolist(), "episodes_done": self.episodes_done,
                "rngs": [None if r is None else r.bit_generator.state for r in self._rngs]}

    def set_state(self, state: dict[str, Any]) -> None:
        if len(state["row"]) != self.num_envs:
            raise ValueError(f"state of {len(state['row'])} envs cannot be loaded into {self.num_envs} envs")
        self._row = np.asarray(state["row"], np.int64)
        self._end = np.asarray(state["end"], np.int64)
        self._position = np.asarray(state["position"], np.float64)
        self._episode_return = np.asarray(state["episode_return"], np.float64)
        self.episodes_done = int(state["episodes_done"])
        for i, rng_state in enumerate(state["rngs"]):
            self._rngs[i] = None if rng_state is None else np_random(0)[0]
            if rng_state is not None:
                self._rngs[i].bit_generator.state = rng_state
        self._reset_seeds()
        self._reset_once = True

    # -- VecEnv plumbing: the envs are rows of shared arrays, not objects -------------------------------------------
    def close(self) -> None:
        """Nothing to release: no subprocesses, no files."""

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name not in ("render_mode", "config", "normalizer"):
            raise AttributeError(f"LatentTradingVecEnv envs have no attribute {attr_name!r}: they are rows of "
                                 "shared arrays (available: render_mode, config, normalizer)")
        return [getattr(self, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"cannot set {attr_name!r} per env: LatentTradingVecEnv envs share one config")

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        raise AttributeError(f"LatentTradingVecEnv envs have no methods ({method_name!r}): they are rows of shared "
                             "arrays; use the LatentTradingVecEnv itself")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(self._indices(indices))
