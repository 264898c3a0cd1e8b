"""The one Lightning ``fit`` of every stage: device and precision, determinism, gradient clipping, quiet logs, and
preemption-safe checkpoints (``fin_ia_models.utils.preemption``) with automatic resume."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fin_ia_models.utils.device import DeviceChoice


@dataclass
class FitRun:
    """What ``fit_resumably`` did: where it resumed from (None = fresh), the step it started at, its wall time."""

    resumed_from: Path | None
    start_step: int
    wall_time_s: float


@contextmanager
def quiet_lightning():
    """Lightning announces devices at INFO level on every Trainer; keep the stage's own logger the only voice."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def fit_resumably(module, loader, device: DeviceChoice, *, grad_clip: float, fingerprint: str,
                  checkpoint_dir: str | Path | None = None, checkpoint_every_n_steps: int = 0,
                  max_steps: int = -1, max_epochs: int | None = None,
                  limit_train_batches: int | None = None) -> FitRun:
    """Train ``module`` on ``loader`` with Lightning.

    fp32 and deterministic kernels on CPU (same seed → same weights bit for bit); bf16-mixed on CUDA, where some
    kernels have no deterministic variant (torch warns). With ``checkpoint_dir`` a ``PreemptionCheckpoint`` writes a
    resumable checkpoint every ``checkpoint_every_n_steps`` steps and on SIGTERM, and a checkpoint of this same run
    (``fingerprint``) found there is resumed from.
    """
    import lightning as L

    from fin_ia_models.utils.preemption import PreemptionCheckpoint, checkpoint_meta, resumable_checkpoint

    if checkpoint_every_n_steps < 0 or (checkpoint_every_n_steps and checkpoint_dir is None):
        raise ValueError(f"checkpoint_every_n_steps = {checkpoint_every_n_steps} needs to be >= 0, and > 0 only "
                         "together with a checkpoint_dir")
    callbacks, resume_from, start_step = [], None, 0
    if checkpoint_dir is not None:
        callbacks.append(PreemptionCheckpoint(checkpoint_dir, checkpoint_every_n_steps, fingerprint))
        resume_from = resumable_checkpoint(checkpoint_dir, fingerprint)
        start_step = checkpoint_meta(resume_from)["global_step"] if resume_from else 0
    with quiet_lightning():
        trainer = L.Trainer(
            accelerator=device.accelerator, devices=1, precision=device.precision, max_steps=max_steps,
            max_epochs=max_epochs, limit_train_batches=limit_train_batches,
            deterministic=True if device.accelerator == "cpu" else "warn", gradient_clip_val=grad_clip,
            logger=False, enable_checkpointing=bool(callbacks), callbacks=callbacks, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0,
        )
        started = time.perf_counter()
        trainer.fit(module, train_dataloaders=loader, ckpt_path=resume_from)
    return FitRun(resume_from, start_step, time.perf_counter() - started)
