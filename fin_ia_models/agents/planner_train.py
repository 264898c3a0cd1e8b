"""Training of the CVaR planner's critics and policy prior (TD learning on the logged data, see ``planner.py`` for
what is kept from TD-MPC2 and what is changed), with validation-based model choice and preemption safety.

One gradient step on a batch of transitions t → t+1 of the training windows (features x_t, x_{t+1}, realized
return r_t, the multiverse's first-step futures f_t (N,)):

- positions held p ~ U(−1, 1): the market does not react, so every position is a valid state at every t;
- critics (quantile Huber, QR-DQN): target = reward_scale · step_reward(a, p, r_t) + γ · min of two random target
  members' quantiles of V̄(x_{t+1}, a), with a ~ π(x_t, p) (no gradient);
- prior: maximise CVaR_α over the N futures of step_reward(a, p, f_t) plus γ · CVaR_α of V(x_{t+1}, a) (the
  planner's score at horizon 1, the same comonotonic sum; critic weights detached, as TD-MPC2's policy update leaves
  Q untouched), with an entropy bonus;
- Polyak update of the target critics after the optimizer step (inside the checkpointed step).

The loop is Lightning through ``fin_ia_models.training.lightning_fit.fit_resumably`` (``PreemptionCheckpoint``: SIGTERM
→ checkpoint → ``TrainingPreempted``; the same call resumes). The sampling of positions, prior actions and target
pairs uses torch's global generator, whose state the checkpoint restores; validation decisions use their own seeded
generators. On CPU a resumed run ends with exactly the weights of an uninterrupted one (tested). Training runs on
CPU: the networks are 64 units wide and validation plans one decision at a time, where a GPU only adds latency.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import lightning as L
import numpy as np
import torch
from torch.func import functional_call
from torch.utils.data import Dataset

from fin_ia_models.agents.critics import quantile_huber_loss
from fin_ia_models.agents.cvar import cvar_lower
from fin_ia_models.agents.data import AgentData
from fin_ia_models.agents.decide import decide
from fin_ia_models.agents.features import ObsNormalizer, check_same_dims
from fin_ia_models.agents.planner import CVaRPlannerAgent
from fin_ia_models.agents.planner_config import CVaRPlannerConfig, PlannerSpec
from fin_ia_models.agents.rewards import step_reward
from fin_ia_models.agents.selection import ValidationSelector
from fin_ia_models.training.lightning_fit import fit_resumably
from fin_ia_models.training.result import TrainingResult
from fin_ia_models.utils.device import DeviceChoice
from fin_ia_models.utils.preemption import ResumableLoader, training_fingerprint
from fin_ia_models.utils.seeding import seed_everything

logger = logging.getLogger("fin_ia.agents")
CPU = DeviceChoice("cpu", "32-true", "cpu")


@dataclass(frozen=True)
class Transitions:
    """All training transitions t → t+1 (the last row of each window has no successor and is left out)."""

    x: torch.Tensor  # (n, I − 1) normalised features at t
    x_next: torch.Tensor  # (n, I − 1) at t + 1
    ret: torch.Tensor  # (n,) float32 return earned t → t+1 (0 across a gap)
    tradable: torch.Tensor  # (n,) bool
    futures: torch.Tensor  # (n, N) the multiverse's sampled first-step returns at t

    @classmethod
    def build(cls, train: list[AgentData], normalizer: ObsNormalizer) -> Transitions:
        parts = []
        for data in train:
            x = normalizer.transform(data.features())  # (T, I − 1)
            parts.append((x[:-1], x[1:], data.earned_return()[:-1], data.tradable[:-1], data.mv_futures[:-1, :, 0]))
        x, x_next, ret, tradable, futures = (np.concatenate(p) for p in zip(*parts))
        return cls(torch.from_numpy(x), torch.from_numpy(x_next), torch.from_numpy(ret.astype(np.float32)),
                   torch.from_numpy(tradable), torch.from_numpy(futures.astype(np.float32)))


class _Indices(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


class CVaRPlannerLightning(L.LightningModule):
    """TD training of ``agent``'s critics and prior (module docstring); validation every ``eval_every_n_steps``."""

    def __init__(self, agent: CVaRPlannerAgent, transitions: Transitions, selector: ValidationSelector,
                 on_row: Callable[[dict[str, float]], None] | None) -> None:
        super().__init__()
        self.agent = agent
        self.target_critics = copy.deepcopy(agent.critics).requires_grad_(False)
        self.config: CVaRPlannerConfig = agent.config.planner
        self.transitions, self.selector, self.on_row = transitions, selector, on_row
        self.history: list[dict[str, float]] = []
        self._losses: list[tuple[float, float]] = []  # (critic, prior) per step since the last evaluation

    def losses(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, env, tr = self.config, self.config.env, self.transitions
        x, x_next, ret, tradable, futures = tr.x[idx], tr.x_next[idx], tr.ret[idx], tr.tradable[idx], tr.futures[idx]
        critics, prior, scale = self.agent.critics, self.agent.prior, env.reward_scale
        held = torch.rand(len(idx)) * 2 - 1  # (B,) counterfactual positions held at t
        state = torch.cat([x, held[:, None]], 1)  # (B, I)
        with torch.no_grad():
            action = torch.where(tradable, prior.sample(state)[0], 0.0)  # (B,) flat across a gap
            reward = scale * step_reward(action, held, ret, env.cost_rate, env.risk_penalty)  # (B,)
            pair = torch.randperm(cfg.n_critics)[:2]
            next_q = self.target_critics(torch.cat([x_next, action[:, None]], 1))[pair].min(0).values  # (B, M)
            target = reward[:, None] + cfg.discount * next_q  # (B, M)
        pred = critics(state)  # (E, B, M)
        n_members, batch, m = pred.shape
        # sum over members of each member's batch-mean loss
        critic_loss = n_members * quantile_huber_loss(pred.reshape(-1, m), target.repeat(n_members, 1),
                                                      cfg.huber_kappa)
        action, log_prob = prior.sample(state)
        action = torch.where(tradable, action, 0.0)
        pnl = action[:, None] * futures  # (B, N)
        step = pnl - env.cost_rate * (action - held).abs()[:, None] - env.risk_penalty * pnl**2
        frozen = {name: p.detach() for name, p in critics.named_parameters()}
        tail_q = functional_call(critics, frozen, (torch.cat([x_next, action[:, None]], 1),)).mean(0)  # (B, M)
        objective = (cvar_lower(step, cfg.mppi.cvar_alpha)
                     + cfg.discount * cvar_lower(tail_q, cfg.mppi.cvar_alpha) / scale)  # (B,) return units
        prior_loss = (cfg.entropy_coef * log_prob - scale * objective).mean()
        return critic_loss, prior_loss

    def training_step(self, idx: torch.Tensor, batch_idx: int) -> torch.Tensor:
        if self.global_step > 0 and self.global_step % self.config.eval_every_n_steps == 0:
            self.evaluate()  # the parameters after global_step updates, before this step's
        critic_loss, prior_loss = self.losses(idx)
        self._losses.append((float(critic_loss.detach()), float(prior_loss.detach())))
        return critic_loss + prior_loss

    def optimizer_step(self, *args, **kwargs) -> None:
        # the target update belongs to the optimizer step: checkpoint callbacks run before on_train_batch_end hooks
        super().optimizer_step(*args, **kwargs)
        with torch.no_grad():
            for target, online in zip(self.target_critics.parameters(), self.agent.critics.parameters()):
                target.lerp_(online, self.config.tau)

    @torch.no_grad()
    def evaluate(self) -> None:
        """Run the full planner over the validation windows, offer the parameters for model choice, log a row."""
        scores = self.selector.evaluate(self.agent)
        step = int(self.global_step)
        kept = self.selector.offer(scores, step, lambda: self.agent.state_dict())
        losses = np.array(self._losses) if self._losses else np.full((1, 2), np.nan)
        row = {"step": float(step), "critic_loss": float(losses[:, 0].mean()), "prior_loss": float(losses[:, 1].mean()),
               **scores, "kept": float(kept)}
        self._losses = []
        self.history.append(row)
        logger.info("CVaR planner step %d: critic loss %.4f, prior loss %.4f, validation net reward %.4f Sharpe %.2f "
                    "CVaR5%% %.5f%s", step, row["critic_loss"], row["prior_loss"], row["val_net_reward"],
                    row["val_sharpe"], row["val_cvar05"], " (best so far)" if kept else "")
        if self.on_row is not None:
            self.on_row(dict(row))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["planner_training"] = {"history": self.history, "selector": self.selector.state_dict(),
                                          "losses": self._losses}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint["planner_training"]
        self.history, self._losses = list(state["history"]), [tuple(x) for x in state["losses"]]
        self.selector.load_state_dict(state["selector"])

    def configure_optimizers(self):
        params = list(self.agent.critics.parameters()) + list(self.agent.prior.parameters())
        return torch.optim.Adam(params, lr=self.config.lr)


def _check_windows(train: list[AgentData], val: list[AgentData], config: CVaRPlannerConfig) -> tuple[int, int, int]:
    if not train or not val:
        raise ValueError(f"train_cvar_planner needs training and validation windows, got {len(train)}, {len(val)}")
    dims = check_same_dims(list(train) + list(val))
    for name, windows in (("train", train), ("val", val)):
        for i, data in enumerate(windows):
            if data.mv_futures is None or data.mv_futures.shape[2] < config.mppi.horizon:
                got = None if data.mv_futures is None else data.mv_futures.shape
                raise ValueError(f"{name} window {i} ({data.symbol or 'unnamed'}): the planner needs mv_futures "
                                 f"(T, N, H >= horizon {config.mppi.horizon}), got {got}")
    return dims


def train_cvar_planner(train: list[AgentData], val: list[AgentData], config: CVaRPlannerConfig = CVaRPlannerConfig(),
                       seed: int = 0, checkpoint_dir: str | Path | None = None, checkpoint_every_n_steps: int = 0,
                       log: Callable[[dict[str, float]], None] | None = None) -> TrainingResult:
    """Train the critics and prior of a ``CVaRPlannerAgent`` on ``train``; keep the parameters whose full planner
    scores best on ``val``. ``checkpoint_dir`` / ``checkpoint_every_n_steps`` / ``log`` as in ``train_ppo``
    (here in gradient steps; the checkpoint is Lightning's ``last.ckpt``)."""
    started = time.perf_counter()
    dims = _check_windows(train, val, config)
    seed_everything(seed)
    normalizer = ObsNormalizer.fit(train, config.env.obs_clip)
    agent = CVaRPlannerAgent(PlannerSpec(config, dims, seed))
    agent.set_normalizer(normalizer)
    transitions = Transitions.build(train, normalizer)
    n = len(transitions.ret)
    loader = ResumableLoader(_Indices(n), min(config.batch_size, n), seed, shuffle=True,
                             drop_last=n >= 2 * config.batch_size)
    module = CVaRPlannerLightning(agent, transitions, ValidationSelector(val, config.env, config.select_by), log)
    fingerprint = training_fingerprint("cvar_planner", config.to_dict(), seed,
                                       *[a for d in train for a in d.arrays()], *[a for d in val for a in d.arrays()])
    logger.info("training the CVaR planner on %d transitions of %d windows, %d steps, validation on %d windows", n,
                len(train), config.max_steps, len(val))
    run = fit_resumably(module, loader, CPU, grad_clip=config.grad_clip, fingerprint=fingerprint,
                        checkpoint_dir=checkpoint_dir, checkpoint_every_n_steps=checkpoint_every_n_steps,
                        max_steps=config.max_steps, max_epochs=-1)
    module.evaluate()  # the final parameters
    agent.load_state_dict(module.selector.best_state)
    agent.eval()
    elapsed = time.perf_counter() - started
    metrics: dict[str, Any] = {**module.selector.final_metrics(), "train_steps": float(config.max_steps),
                               "train_steps_per_s": (config.max_steps - run.start_step) / max(run.wall_time_s, 1e-9)}
    best = module.selector.best_scores
    summary = (f"CVaR planner: validation Sharpe {best['val_sharpe']:.2f}, net log return "
               f"{best['val_net_reward']:+.4f}, CVaR5% {best['val_cvar05']:.5f} at step {module.selector.best_step} "
               f"of {config.max_steps}")
    row = val[0].row(0)
    example = np.concatenate([row.features(), [0.0]]).astype(np.float32)[None]  # (1, F + 1) raw features, position
    return TrainingResult(model=agent, config=config, seed=seed, history=module.history, metrics=metrics,
                          device=CPU.device_name, wall_time_s=elapsed, input_example=example,
                          output_example=np.array([[decide(agent, row, 0.0)]], dtype=np.float32),
                          info={"summary": summary, "kind": CVaRPlannerAgent.kind, "dims": list(dims), "n_transitions": n,
                                "n_train_windows": len(train), "n_val_windows": len(val),
                                "resumed_from_step": run.start_step, "best_step": module.selector.best_step})
