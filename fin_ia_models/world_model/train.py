"""The one Fin-JEPA training entry point: plain arguments in, a trained model + checkpoint + stats out.

Windows of ``config.seq_len`` tokens are drawn (seeded) from all symbols, weighted by sequence length; Lightning
runs ``config.max_steps`` steps: fp32 on CPU, bf16-mixed + TF32 (+ torch.compile if ``config.compile``) on CUDA.
With ``checkpoint_dir`` the run is preemption-safe (``fin_ia_models.utils.preemption``).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from fin_ia_models.utils.device import choose_device
from fin_ia_models.utils.preemption import (PreemptionCheckpoint, ResumableLoader, checkpoint_meta,
                                            resumable_checkpoint, training_fingerprint)
from fin_ia_models.utils.seeding import seed_everything
from fin_ia_models.world_model.collapse import CollapseStats, collapse_stats
from fin_ia_models.world_model.config import ExoClockConfig, JEPAConfig, Mamba2Config, MaskingConfig
from fin_ia_models.world_model.jepa import FinJEPA
from fin_ia_models.world_model.lightning_module import JEPALightning
from fin_ia_models.world_model.sequences import SequenceArrays, sequence_arrays

log = logging.getLogger("fin_ia.world_model")
CHECKPOINT_NAME = "jepa_encoder.pt"


@dataclass
class JEPATrainResult:
    model: FinJEPA  # trained, on CPU, eval mode
    checkpoint_path: Path  # torch.save of {"config": dict, "state_dict": ...}; reload with ``load_jepa``
    history: list[dict[str, float]]  # per-step loss terms, EMA momentum, periodic collapse stats
    collapse: CollapseStats  # of the context embeddings of the last batch
    tokens_seen: int  # max_steps · batch_size · seq_len
    tokens_per_s: float  # training throughput
    device: str  # where it trained


class WindowDataset(Dataset):
    """All windows of the run, drawn once from a seeded generator: item i → one (symbol, start) window."""

    def __init__(self, seqs: list[SequenceArrays], seq_len: int, n_windows: int, rng: np.random.Generator) -> None:
        lengths = np.array([len(s.tokens) - seq_len + 1 for s in seqs])
        self.seqs, self.seq_len = seqs, seq_len
        self.which = rng.choice(len(seqs), size=n_windows, p=lengths / lengths.sum())
        self.starts = (rng.random(n_windows) * lengths[self.which]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.which)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s, a = self.seqs[self.which[i]], self.starts[i]
        sl = slice(a, a + self.seq_len)
        item = {"tokens": torch.from_numpy(s.tokens[sl].copy())}
        if s.latents is not None:
            item["latents"] = torch.from_numpy(s.latents[sl].copy())
        if s.exo is not None:
            item["exo"] = torch.from_numpy(s.exo[sl].copy())
        return item


def train_jepa(
    token_sequences: dict[str, pd.DataFrame],
    config: JEPAConfig,
    seed: int,
    output_dir: str | Path,
    exo: dict[str, pd.DataFrame] | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every_n_steps: int = 0,
) -> JEPATrainResult:
    """Train Fin-JEPA on ``token_sequences`` (symbol → token-sequence frame, see ``sequences.py``); ``exo`` maps
    symbol → exo frame when the exo-clock is on and the frames lack the exo columns. Writes the checkpoint to
    ``output_dir``.

    ``checkpoint_dir``: a folder owned by this one run (e.g. per Dagster run id and asset); None = no resumable
    checkpoints. When it holds ``last.ckpt`` from the same config, seed and windows, training resumes there
    (context encoder, predictor and EMA target encoder, AdamW and LR-schedule state, global step, window position,
    RNG states, history); a checkpoint of another run is a ValueError. ``checkpoint_every_n_steps``: also save every
    that many optimizer steps (0 = only on SIGTERM and at the end). On SIGTERM the step in flight finishes, is saved,
    and ``TrainingPreempted`` is raised. On CPU the resumed run ends with the same weights as an uninterrupted one.
    ``tokens_per_s`` counts only the steps this call ran.
    """
    if checkpoint_every_n_steps < 0 or (checkpoint_every_n_steps and checkpoint_dir is None):
        raise ValueError(f"checkpoint_every_n_steps = {checkpoint_every_n_steps} needs to be >= 0, and > 0 only "
                         "together with a checkpoint_dir")
    rng = seed_everything(seed)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    seqs = []
    for symbol, frame in sorted(token_sequences.items()):
        arrays = sequence_arrays(frame, config, None if exo is None else exo.get(symbol))
        if len(arrays.tokens) >= config.seq_len:
            seqs.append(arrays)
        else:
            log.info("skipping %s: %d tokens < seq_len %d", symbol, len(arrays.tokens), config.seq_len)
    if not seqs:
        raise ValueError(f"no token sequence has at least seq_len = {config.seq_len} tokens")

    device = choose_device()
    dataset = WindowDataset(seqs, config.seq_len, config.max_steps * config.batch_size, rng)
    loader = ResumableLoader(dataset, config.batch_size, seed, shuffle=False, drop_last=True)
    module = JEPALightning(config, seed)
    if device.accelerator == "cuda" and config.compile:
        module.model.context_encoder = torch.compile(module.model.context_encoder)
    callbacks, resume_from, start_step = [], None, 0
    if checkpoint_dir is not None:
        fingerprint = training_fingerprint("jepa", dataclasses.asdict(config), seed, dataset.which, dataset.starts,
                                           *_arrays(seqs))
        callbacks.append(PreemptionCheckpoint(checkpoint_dir, checkpoint_every_n_steps, fingerprint))
        resume_from = resumable_checkpoint(checkpoint_dir, fingerprint)
        start_step = checkpoint_meta(resume_from)["global_step"] if resume_from else 0
    trainer = L.Trainer(
        accelerator=device.accelerator, devices=1, precision=device.precision, max_steps=config.max_steps,
        deterministic=True, logger=False, enable_checkpointing=bool(callbacks), callbacks=callbacks,
        enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=1.0,
    )
    log.info("training Fin-JEPA on %d sequences, %d steps, device %s%s", len(seqs), config.max_steps,
             device.device_name, f", resuming from step {start_step}" if resume_from else "")
    t0 = time.perf_counter()
    trainer.fit(module, loader, ckpt_path=resume_from)
    elapsed = time.perf_counter() - t0

    model = module.model.cpu().eval()
    if hasattr(model.context_encoder, "_orig_mod"):  # undo torch.compile for export
        model.context_encoder = model.context_encoder._orig_mod
    path = out / CHECKPOINT_NAME
    save_jepa(model, path)
    tokens_seen = config.max_steps * config.batch_size * config.seq_len
    tokens_now = (config.max_steps - start_step) * config.batch_size * config.seq_len
    last = dataset[len(dataset) - 1]
    with torch.no_grad():
        emb = model.context_encoder(last["tokens"][None], _opt(last, "latents"), _opt(last, "exo"))
    return JEPATrainResult(model, path, module.history, collapse_stats(emb), tokens_seen, tokens_now / elapsed,
                           device.device_name)


def _arrays(seqs: list[SequenceArrays]) -> list[np.ndarray]:
    """Every array the windows are cut from, for the checkpoint fingerprint."""
    return [a for s in seqs for a in (s.tokens, s.latents, s.exo) if a is not None]


def _opt(item: dict[str, torch.Tensor], key: str) -> torch.Tensor | None:
    return item[key][None] if key in item else None


def config_from_dict(d: dict) -> JEPAConfig:
    """Inverse of ``dataclasses.asdict`` for JEPAConfig (nested dataclasses, tuples)."""
    mixer = dict(d["mixer"])
    mixer["exo"] = ExoClockConfig(**mixer["exo"])
    mixer["dt_limit"] = tuple(mixer["dt_limit"])
    mixer["A_init_range"] = tuple(mixer["A_init_range"])
    masking = dict(d["masking"])
    masking["block_ratio"] = tuple(masking["block_ratio"])
    rest = {k: v for k, v in d.items() if k not in ("mixer", "masking")}
    return JEPAConfig(mixer=Mamba2Config(**mixer), masking=MaskingConfig(**masking), **rest)


def save_jepa(model: FinJEPA, path: str | Path) -> Path:
    """Write ``{"config", "state_dict"}`` atomically (temporary sibling + ``os.replace``); ``load_jepa`` reads it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save({"config": dataclasses.asdict(model.config), "state_dict": model.state_dict()}, handle)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def load_jepa(path: str | Path) -> FinJEPA:
    """Rebuild a FinJEPA (CPU, eval mode) from a ``train_jepa`` checkpoint."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = FinJEPA(config_from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
