"""PPO trading agent (Schulman et al. 2017, "Proximal Policy Optimization Algorithms") with stable-baselines3 on the
vectorised latent env, validation-based model choice and preemption-safe, resumable training.

``train_ppo`` is the one training entry point: plain arrays in (``AgentData`` windows), a ``TrainingResult`` out
whose ``model`` is a ``PPOAgent`` (SB3 policy + the training window's observation normaliser). The policy is SB3's
``MlpPolicy``: a diagonal Gaussian over the target position (clipped to [−1, 1] by SB3 before the env sees it),
acting deterministically (the Gaussian's mean, clipped) when deciding. After every ``eval_every_n_updates`` PPO
updates the current policy trades the validation windows (``selection.py``); the best one is returned.
Progress goes to the logger "fin_ia.agents" and, row by row, to the optional ``log`` callable.
"""

from __future__ import annotations

import io
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from stable_baselines3 import PPO

from fin_ia_models.agents.config import EnvConfig, PPOConfig
from fin_ia_models.agents.data import AgentData, AgentRow
from fin_ia_models.agents.decide import decide
from fin_ia_models.agents.features import ObsNormalizer, check_same_dims
from fin_ia_models.agents.sb3_preemption import SB3Checkpointer, UpdateBoundaryCallback
from fin_ia_models.agents.selection import ValidationSelector
from fin_ia_models.agents.vec_env import LatentTradingVecEnv
from fin_ia_models.training.result import TrainingResult
from fin_ia_models.utils.atomic import atomic_write_bytes
from fin_ia_models.utils.preemption import training_fingerprint
from fin_ia_models.utils.seeding import seed_everything

logger = logging.getLogger("fin_ia.agents")
META_ATTRIBUTE = "fin_ia_agent"  # attribute of the SB3 model that carries the normaliser and env config in its zip


class PPOAgent:
    """A trained SB3 PPO policy and the normaliser of its training window (a ``decide.TradingAgent``)."""

    kind = "ppo"

    def __init__(self, model: PPO, normalizer: ObsNormalizer, env_config: EnvConfig) -> None:
        width = model.observation_space.shape[0]
        if width != normalizer.obs_dim:
            raise ValueError(f"policy observation width {width} != normaliser's {normalizer.obs_dim}")
        self.model, self.normalizer, self.env_config = model, normalizer, env_config

    def act(self, row: AgentRow, position: float) -> float:
        obs = np.empty((1, self.normalizer.obs_dim), dtype=np.float32)  # (1, F + 1)
        obs[0, :-1] = self.normalizer.transform(row.features())
        obs[0, -1] = position
        action, _ = self.model.predict(obs, deterministic=True)  # (1, 1), already clipped to the action space
        return float(np.clip(action[0, 0], -1.0, 1.0))

    def save(self, path: str | Path) -> Path:
        """SB3's own zip (``PPO.save``), written atomically; the normaliser and env config travel inside it."""
        setattr(self.model, META_ATTRIBUTE, {"normalizer": self.normalizer.to_dict(),
                                             "env_config": self.env_config.to_dict()})
        buffer = io.BytesIO()
        self.model.save(buffer)
        atomic_write_bytes(Path(path), buffer.getvalue())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> PPOAgent:
        """The agent saved by ``save`` (CPU, parameters exactly as saved)."""
        model = PPO.load(path, device="cpu")
        meta = getattr(model, META_ATTRIBUTE, None)
        if meta is None:
            raise ValueError(f"{path} is an SB3 model without fin-ia agent metadata (not saved by PPOAgent.save)")
        return cls(model, ObsNormalizer.from_dict(meta["normalizer"]), EnvConfig.from_dict(meta["env_config"]))


class _Progress:
    """What happens after each PPO update: validation evaluation (when due), model choice, history, logging."""

    def __init__(self, model: PPO, venv: LatentTradingVecEnv, agent: PPOAgent, selector: ValidationSelector,
                 config: PPOConfig, on_row: Callable[[dict[str, float]], None] | None) -> None:
        self.model, self.venv, self.agent, self.selector, self.config = model, venv, agent, selector, config
        self.on_row = on_row
        self.history: list[dict[str, float]] = []

    def after_update(self, final: bool) -> None:
        update = self.model.num_timesteps // (self.config.n_envs * self.config.n_steps)
        if not final and update % self.config.eval_every_n_updates != 0:
            return
        rewards = [info["r"] for info in self.model.ep_info_buffer or []]
        scores = self.selector.evaluate(self.agent)
        kept = self.selector.offer(scores, self.model.num_timesteps, lambda: self.model.policy.state_dict())
        row = {"timesteps": float(self.model.num_timesteps), "update": float(update),
               "episodes": float(self.venv.episodes_done),
               "train_mean_episode_reward": (float(np.mean(rewards)) / self.config.env.reward_scale
                                             if rewards else math.nan),
               **scores, "kept": float(kept)}
        self.history.append(row)
        logger.info("PPO update %d: %d env steps, %d episodes, mean episode reward %.4f, validation net reward "
                    "%.4f Sharpe %.2f%s", update, row["timesteps"], row["episodes"], row["train_mean_episode_reward"],
                    row["val_net_reward"], row["val_sharpe"], " (best so far)" if kept else "")
        if self.on_row is not None:
            self.on_row(dict(row))

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "selector": self.selector.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state["history"])
        self.selector.load_state_dict(state["selector"])


def build_ppo_model(venv: LatentTradingVecEnv, config: PPOConfig, seed: int) -> PPO:
    """SB3's PPO with ``MlpPolicy`` configured from ``config`` on ``venv`` (untrained; seeds SB3's generators)."""
    return PPO("MlpPolicy", venv, learning_rate=config.learning_rate, n_steps=config.n_steps,
               batch_size=config.batch_size, n_epochs=config.n_epochs, gamma=config.gamma,
               gae_lambda=config.gae_lambda, clip_range=config.clip_range, ent_coef=config.ent_coef,
               vf_coef=config.vf_coef, max_grad_norm=config.max_grad_norm, seed=seed, device=config.device,
               verbose=0, policy_kwargs={"net_arch": list(config.net_arch), "log_std_init": config.log_std_init})


def train_ppo(train: list[AgentData], val: list[AgentData], config: PPOConfig = PPOConfig(), seed: int = 0,
              checkpoint_dir: str | Path | None = None, checkpoint_every_n_steps: int = 0,
              log: Callable[[dict[str, float]], None] | None = None) -> TrainingResult:
    """Train PPO on random episodes of the ``train`` windows, choose the parameters by validation on ``val``.

    ``checkpoint_dir``: a folder owned by this run; with it the run is preemption-safe (``sb3_preemption.py``):
    SIGTERM → checkpoint at the next update boundary → ``TrainingPreempted``; calling again with the same arguments
    resumes and ends (on CPU) with exactly the parameters of an uninterrupted run. A checkpoint of another run
    (config, seed or data) is a ValueError. ``checkpoint_every_n_steps``: also save every that many env steps
    (0 = only on SIGTERM and at the end). ``log``: called with each history row (e.g. an orchestrator's logger).
    """
    started = time.perf_counter()
    if checkpoint_every_n_steps < 0 or (checkpoint_every_n_steps and checkpoint_dir is None):
        raise ValueError(f"checkpoint_every_n_steps = {checkpoint_every_n_steps} needs to be >= 0, and > 0 only "
                         "together with a checkpoint_dir")
    if not train or not val:
        raise ValueError(f"train_ppo needs training and validation windows, got {len(train)} and {len(val)}")
    check_same_dims(list(train) + list(val))
    seed_everything(seed)
    normalizer = ObsNormalizer.fit(train, config.env.obs_clip)
    venv = LatentTradingVecEnv(train, config.env, normalizer, n_envs=config.n_envs)
    model = build_ppo_model(venv, config, seed)
    agent = PPOAgent(model, normalizer, config.env)
    progress = _Progress(model, venv, agent, ValidationSelector(val, config.env, config.select_by), config, log)
    checkpointer, state = None, None
    if checkpoint_dir is not None:
        fingerprint = training_fingerprint("ppo", config.to_dict(), seed, *[a for d in train for a in d.arrays()],
                                           *[a for d in val for a in d.arrays()])
        checkpointer = SB3Checkpointer(checkpoint_dir, checkpoint_every_n_steps, fingerprint)
        state = checkpointer.load()
    if state is not None:
        progress.load_state_dict(state["trainer"])
        SB3Checkpointer.restore(model, venv, state)
        logger.info("resuming PPO from a %s checkpoint at %d env steps", state["reason"], model.num_timesteps)
    resumed_at = int(model.num_timesteps)
    callback = UpdateBoundaryCallback(progress.after_update, checkpointer, progress.state_dict)
    logger.info("training PPO on %d windows (%d rows), %d env steps in %d envs, validation on %d windows",
                len(train), sum(len(d) for d in train), config.total_timesteps, config.n_envs, len(val))
    try:
        remaining = config.total_timesteps - resumed_at
        if remaining > 0:
            model.learn(remaining, callback=callback, log_interval=None, reset_num_timesteps=state is None)
    finally:
        callback.restore_handler()
    model.policy.load_state_dict(progress.selector.best_state)
    elapsed = time.perf_counter() - started
    metrics = {**progress.selector.final_metrics(), "train_timesteps": float(model.num_timesteps),
               "train_episodes": float(venv.episodes_done),
               "train_steps_per_s": (model.num_timesteps - resumed_at) / elapsed}
    best = progress.selector.best_scores
    summary = (f"PPO: validation Sharpe {best['val_sharpe']:.2f}, net log return {best['val_net_reward']:+.4f} at "
               f"{progress.selector.best_step} of {model.num_timesteps} env steps")
    row = val[0].row(0)
    example = np.concatenate([row.features(), [0.0]]).astype(np.float32)[None]  # (1, F + 1) raw features, position
    return TrainingResult(model=agent, config=config, seed=seed, history=progress.history, metrics=metrics,
                          device=str(model.device), wall_time_s=elapsed, input_example=example,
                          output_example=np.array([[decide(agent, row, 0.0)]], dtype=np.float32),
                          info={"summary": summary, "kind": PPOAgent.kind, "dims": list(normalizer.dims), "obs_dim": normalizer.obs_dim,
                                "n_train_windows": len(train), "n_val_windows": len(val),
                                "resumed_from_timesteps": resumed_at, "best_timesteps": progress.selector.best_step})
