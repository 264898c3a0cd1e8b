"""Preemption-safe stable-baselines3 training: resumable checkpoints every N env steps and on SIGTERM, at PPO update
boundaries, with bit-identical resumption on CPU.

The Lightning stages get this from ``fin_ia_models.utils.preemption.PreemptionCheckpoint``; SB3 has no such hook,
so ``UpdateBoundaryCallback`` plays its part. SB3's ``learn`` loop is collect rollout → update → collect → …; the
callback acts at the update boundaries (``on_rollout_start`` after an update, and ``on_training_end``), where
the whole training state is small and explicit:

- policy and value weights and the Adam state (``policy.state_dict``, ``policy.optimizer.state_dict``);
- SB3's counters (``num_timesteps``, ``_n_updates``, ``_episode_num``), the last observations and episode-start flags
  the next rollout continues from, the recent-episode buffer (logging);
- the vectorised env's rows, positions, episode returns and per-env generator states (``LatentTradingVecEnv``);
- the global RNG states (torch: action sampling; numpy: SB3's minibatch permutation; python), captured with the
  same helpers as ``PreemptionCheckpoint``;
- the trainer's own state (validation history, the best parameters so far).

The rollout buffer needs no saving: SB3 refills it from scratch after every update. The learning-rate and clip
schedules depend on ``num_timesteps`` only, and resuming calls ``learn(remaining, reset_num_timesteps=False)`` so
SB3's progress fraction is the same. Hence on CPU (same torch thread count) a resumed run ends with exactly the
parameters of an uninterrupted one (tested).

SIGTERM: while ``learn`` runs, the handler only sets a flag (as ``PreemptionCheckpoint``: saving or raising inside
a signal handler could interrupt SB3 mid-update). The rollout and update in flight finish, the state is saved at the
next boundary and ``TrainingPreempted`` is raised. A preemption notice therefore waits at most one rollout + update
(n_envs · n_steps env steps and n_epochs passes; seconds for the default sizes). Periodic checkpoints fall on the
first boundary at or after each multiple of ``every_n_steps`` env steps. A SIGTERM during the last update still
raises after the final "complete" checkpoint; the retry then finds training complete. A SIGTERM outside ``learn``
(data preparation, the final evaluation) gets the previously installed behaviour; a retry resumes from the last
checkpoint written.
"""

from __future__ import annotations

import io
import logging
import signal
import threading
from collections import deque
from pathlib import Path
from typing import Any, Callable

import torch
from stable_baselines3.common.callbacks import BaseCallback

from fin_ia_models.agents.vec_env import LatentTradingVecEnv
from fin_ia_models.utils.atomic import atomic_write
from fin_ia_models.utils.preemption import TrainingPreempted, capture_rng_state, restore_rng_state

logger = logging.getLogger("fin_ia.agents")

CHECKPOINT_NAME = "ppo_last.pt"  # the one resumable checkpoint kept in checkpoint_dir (replaced atomically)


class SB3Checkpointer:
    """Writes and reads ``dirpath/ppo_last.pt`` for one training run (identified by ``fingerprint``)."""

    def __init__(self, dirpath: str | Path, every_n_steps: int, fingerprint: str) -> None:
        if every_n_steps < 0:
            raise ValueError(f"every_n_steps must be >= 0 (0 = only on SIGTERM and at the end), got {every_n_steps}")
        self.dirpath, self.every_n_steps, self.fingerprint = Path(dirpath), every_n_steps, fingerprint
        self.path = self.dirpath / CHECKPOINT_NAME

    def save(self, model, venv: LatentTradingVecEnv, trainer_state: dict[str, Any], reason: str,
             sigterm_step: int | None) -> Path:
        state = {
            "fingerprint": self.fingerprint, "reason": reason, "sigterm_step": sigterm_step,
            "num_timesteps": int(model.num_timesteps), "n_updates": int(model._n_updates),
            "episode_num": int(model._episode_num),
            "policy": model.policy.state_dict(), "optimizer": model.policy.optimizer.state_dict(),
            "last_obs": torch.from_numpy(model._last_obs.copy()),
            "last_episode_starts": torch.from_numpy(model._last_episode_starts.copy()),
            "ep_info_buffer": list(model.ep_info_buffer or []), "env": venv.get_state(), "rng": capture_rng_state(),
            "trainer": trainer_state,
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write(self.path, lambda handle: handle.write(buffer.getvalue()))
        logger.info("saved %s PPO checkpoint at %d env steps to %s", reason, model.num_timesteps, self.path)
        return self.path

    def load(self) -> dict[str, Any] | None:
        """The saved state of this run, or None if there is none; another run's checkpoint is a ValueError."""
        if not self.path.exists():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        if state.get("fingerprint") != self.fingerprint:
            raise ValueError(f"{self.path} belongs to another training run (fingerprint {state.get('fingerprint')} "
                             f"!= {self.fingerprint}): use one checkpoint_dir per run, or delete it to start over")
        return state

    @staticmethod
    def restore(model, venv: LatentTradingVecEnv, state: dict[str, Any]) -> None:
        """Put a saved state back into a freshly built ``model`` and ``venv`` (RNG states last: building the model
        reseeded them)."""
        model.policy.load_state_dict(state["policy"])
        model.policy.optimizer.load_state_dict(state["optimizer"])
        model.num_timesteps, model._n_updates = state["num_timesteps"], state["n_updates"]
        model._episode_num = state["episode_num"]
        model._last_obs = state["last_obs"].numpy().copy()
        model._last_episode_starts = state["last_episode_starts"].numpy().copy()
        model.ep_info_buffer = deque(state["ep_info_buffer"], maxlen=model._stats_window_size)
        model.ep_success_buffer = deque(maxlen=model._stats_window_size)
        venv.set_state(state["env"])
        restore_rng_state(state["rng"])


class UpdateBoundaryCallback(BaseCallback):
    """Calls ``after_update(final)`` after every PPO update, then checkpoints when due or on SIGTERM (module
    docstring). ``trainer_state()`` is the caller's state saved with each checkpoint."""

    def __init__(self, after_update: Callable[[bool], None], checkpointer: SB3Checkpointer | None,
                 trainer_state: Callable[[], dict[str, Any]]) -> None:
        super().__init__(verbose=0)
        self.after_update, self.checkpointer, self.trainer_state = after_update, checkpointer, trainer_state
        self._boundary_at = 0  # num_timesteps at the last boundary handled
        self._sigterm_step: int | None = None
        self._replaced_handler: Any = None
        self._installed = False

    # -- SIGTERM ---------------------------------------------------------------------------------------------------
    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if self._sigterm_step is None:  # only a flag: the update in flight must finish
            self._sigterm_step = int(self.model.num_timesteps)

    def _on_training_start(self) -> None:
        self._boundary_at = int(self.model.num_timesteps)
        if self.checkpointer is None:
            return
        if threading.current_thread() is not threading.main_thread():
            logger.warning("PPO trains outside the main thread: SIGTERM cannot be caught, only periodic checkpoints")
            return
        self._replaced_handler = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self._installed = True

    def restore_handler(self) -> None:
        """Put the SIGTERM handler that was there before training back (idempotent)."""
        if self._installed:
            signal.signal(signal.SIGTERM, self._replaced_handler)
            self._installed = False

    # -- boundaries ------------------------------------------------------------------------------------------------
    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps > self._boundary_at:  # an update has run since the last boundary
            self._boundary(final=False)

    def _on_training_end(self) -> None:
        if self.model.num_timesteps > self._boundary_at:
            self._boundary(final=True)
        if self.checkpointer is not None:
            self._save("complete")
        self.restore_handler()
        self._raise_if_preempted()

    def _boundary(self, final: bool) -> None:
        previous, self._boundary_at = self._boundary_at, int(self.model.num_timesteps)
        self.after_update(final)
        if self.checkpointer is None or final:
            return
        if self._sigterm_step is not None:
            self._save("sigterm")
            self.restore_handler()
            self._raise_if_preempted()
        every = self.checkpointer.every_n_steps
        if every > 0 and self._boundary_at // every > previous // every:
            self._save("periodic")

    def _save(self, reason: str) -> None:
        self.checkpointer.save(self.model, self.training_env, self.trainer_state(), reason, self._sigterm_step)

    def _raise_if_preempted(self) -> None:
        if self._sigterm_step is not None:
            logger.warning("SIGTERM at %d env steps: saved a resumable checkpoint at %d to %s", self._sigterm_step,
                           self.model.num_timesteps, self.checkpointer.path)
            raise TrainingPreempted(self.checkpointer.path, int(self.model.num_timesteps))
