"""The training entry point of the multiverse on prepared arrays: context features and future targets in, a
``TrainingResult`` out (model on CPU in eval mode, per-epoch history). Wiring only.

With ``checkpoint_dir`` the run is preemption-safe (``fin_ia_models.utils.preemption``): it resumes from the
checkpoint found there, saves every ``checkpoint_every_n_steps`` optimizer steps and on SIGTERM; on CPU a resumed run
ends with the same weights as an uninterrupted one."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from fin_ia_models.multiverse.config import MultiverseConfig
from fin_ia_models.multiverse.lightning_module import MultiverseLightning
from fin_ia_models.multiverse.model import MultiverseModel
from fin_ia_models.training.lightning_fit import fit_resumably
from fin_ia_models.training.result import TrainingResult
from fin_ia_models.utils.device import choose_device
from fin_ia_models.utils.preemption import ResumableLoader, training_fingerprint
from fin_ia_models.utils.seeding import seed_everything

log = logging.getLogger("fin_ia.multiverse")


def _check_arrays(features: np.ndarray, targets: np.ndarray, config: MultiverseConfig) -> None:
    want_t = (config.horizon, config.target_dim)
    if features.ndim != 2 or features.shape[1] != config.context_dim or targets.shape[1:] != want_t \
            or len(targets) != len(features):
        raise ValueError(f"need features (n, {config.context_dim}) and targets (n, {want_t[0]}, {want_t[1]}), got "
                         f"{features.shape} and {targets.shape}")
    if len(features) < 2:
        raise ValueError(f"need at least 2 training contexts, got {len(features)}")
    for name, values in (("features", features), ("targets", targets)):
        if not np.isfinite(values).all():
            raise ValueError(f"training {name} hold {int((~np.isfinite(values)).sum())} NaN/inf values")


def train_multiverse(features: np.ndarray, targets: np.ndarray, config: MultiverseConfig, seed: int, tokenizer, *,
                     checkpoint_dir: str | Path | None = None, checkpoint_every_n_steps: int = 0,
                     prefer_cuda: bool = True) -> TrainingResult:
    """Train on ``features`` (n, F) and ``targets`` (n, H, d) (raw units, see ``context.py``/``targets.py``);
    ``tokenizer`` is the Strate I model the multiverse decodes with (copied into it, frozen)."""
    started = time.perf_counter()
    seed_everything(seed)
    features = np.ascontiguousarray(features, np.float32)
    targets = np.ascontiguousarray(targets, np.float32)
    _check_arrays(features, targets, config)
    model = MultiverseModel(config)
    model.load_tokenizer(tokenizer)
    model.fit_normalization(features, targets)
    batch = min(config.batch_size, len(features))
    loader = ResumableLoader(TensorDataset(torch.from_numpy(features), torch.from_numpy(targets)), batch, seed,
                             shuffle=True, drop_last=len(features) >= 2 * batch)
    steps_per_epoch = len(loader) if config.max_steps_per_epoch is None else min(len(loader),
                                                                                   config.max_steps_per_epoch)
    module = MultiverseLightning(model, steps_per_epoch * config.epochs)
    device = choose_device(prefer_cuda)
    log.info("training the %s multiverse on %d contexts, %d steps, device %s", config.predictor, len(features),
             steps_per_epoch * config.epochs, device.device_name)
    fingerprint = training_fingerprint("multiverse", config.to_dict(), seed, features, targets)
    with warnings.catch_warnings():  # the frozen tokenizer copy is in eval mode on purpose
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        run = fit_resumably(module, loader, device, grad_clip=config.grad_clip, fingerprint=fingerprint,
                            checkpoint_dir=checkpoint_dir, checkpoint_every_n_steps=checkpoint_every_n_steps,
                            max_epochs=config.epochs, limit_train_batches=steps_per_epoch)
    if run.resumed_from:
        log.info("resumed from step %d (%s)", run.start_step, run.resumed_from)
    model = model.cpu().eval()
    history = module.history
    metrics = {"final_loss": history[-1]["loss"], "first_epoch_loss": history[0]["loss"]}
    return TrainingResult(model, config, seed, history, metrics, device=device.device_name,
                          wall_time_s=time.perf_counter() - started,
                          info={"train_contexts": len(features), "steps": steps_per_epoch * config.epochs,
                                "fit_wall_s": round(run.wall_time_s, 1)})
