"""The one Fin-JEPA training entry point: plain arguments in, a ``TrainingResult`` out (model, history, final
collapse stats and throughput, checkpoint path).

Windows of ``config.seq_len`` tokens are drawn (seeded) from all symbols, weighted by sequence length; Lightning
runs ``config.max_steps`` steps: fp32 on CPU, bf16-mixed + TF32 (+ torch.compile if ``config.compile``) on CUDA.
With ``checkpoint_dir`` the run is preemption-safe (``fin_ia_models.utils.preemption``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from fin_ia_models.training.checkpoint import load_checkpoint, save_checkpoint
from fin_ia_models.training.lightning_fit import fit_resumably
from fin_ia_models.training.result import TrainingResult
from fin_ia_models.utils.device import choose_device
from fin_ia_models.utils.preemption import ResumableLoader, training_fingerprint
from fin_ia_models.utils.seeding import seed_everything
from fin_ia_models.world_model.collapse import collapse_stats
from fin_ia_models.world_model.config import JEPAConfig
from fin_ia_models.world_model.jepa import FinJEPA
from fin_ia_models.world_model.lightning_module import JEPALightning
from fin_ia_models.world_model.sequences import SequenceArrays, sequence_arrays

log = logging.getLogger("fin_ia.world_model")
CHECKPOINT_NAME = "jepa_encoder.safetensors"
KIND = "jepa"


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
) -> TrainingResult:
    """Train Fin-JEPA on ``token_sequences`` (symbol → token-sequence frame, see ``sequences.py``); ``exo`` maps
    symbol → exo frame when the exo-clock is on and the frames lack the exo columns. Writes the checkpoint to
    ``output_dir``.

    ``checkpoint_dir``: a folder owned by this one run (e.g. per Dagster run id and asset); None = no resumable
    checkpoints. When it holds ``last.ckpt`` from the same config, seed and windows, training resumes there
    (context encoder, predictor and EMA target encoder, AdamW and LR-schedule state, global step, window position,
    RNG states, history); a checkpoint of another run is a ValueError. ``checkpoint_every_n_steps``: also save every
    that many optimizer steps (0 = only on SIGTERM and at the end). On SIGTERM the step in flight finishes, is saved,
    and ``TrainingPreempted`` is raised. On CPU the resumed run ends with the same weights as an uninterrupted one.

    Result: ``history`` one row per step (loss terms, EMA momentum, ``collapse_*`` of the batch every 50 steps);
    ``metrics``: ``final_collapse_*`` (context embeddings of the last window, final model) and ``tokens_per_s``
    (steps this call ran); ``info``: ``tokens_seen``, ``steps``.
    """
    started = time.perf_counter()
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
    fingerprint = training_fingerprint("jepa", dataclasses.asdict(config), seed, dataset.which, dataset.starts,
                                       *_arrays(seqs))
    log.info("training Fin-JEPA on %d sequences, %d steps, device %s", len(seqs), config.max_steps,
             device.device_name)
    run = fit_resumably(module, loader, device, grad_clip=config.grad_clip, fingerprint=fingerprint,
                        checkpoint_dir=checkpoint_dir, checkpoint_every_n_steps=checkpoint_every_n_steps,
                        max_steps=config.max_steps)
    if run.resumed_from:
        log.info("resumed from step %d (%s)", run.start_step, run.resumed_from)

    model = module.model.cpu().eval()
    if hasattr(model.context_encoder, "_orig_mod"):  # undo torch.compile for export
        model.context_encoder = model.context_encoder._orig_mod
    path = out / CHECKPOINT_NAME
    save_jepa(model, path)
    tokens_now = (config.max_steps - run.start_step) * config.batch_size * config.seq_len
    last = dataset[len(dataset) - 1]
    with torch.no_grad():
        emb = model.context_encoder(last["tokens"][None], _opt(last, "latents"), _opt(last, "exo"))
    metrics = {f"final_collapse_{k}": float(v) for k, v in collapse_stats(emb).as_dict().items()}
    metrics["tokens_per_s"] = tokens_now / run.wall_time_s
    return TrainingResult(model, config, seed, module.history, metrics, device=device.device_name,
                          wall_time_s=time.perf_counter() - started, checkpoint_path=path,
                          info={"steps": config.max_steps,
                                "tokens_seen": config.max_steps * config.batch_size * config.seq_len})


def _arrays(seqs: list[SequenceArrays]) -> list[np.ndarray]:
    """Every array the windows are cut from, for the checkpoint fingerprint."""
    return [a for s in seqs for a in (s.tokens, s.latents, s.exo) if a is not None]


def _opt(item: dict[str, torch.Tensor], key: str) -> torch.Tensor | None:
    return item[key][None] if key in item else None


def save_jepa(model: FinJEPA, path: str | Path) -> Path:
    """Write ``model`` in the one fin-ia checkpoint format (safetensors, atomic); ``load_jepa`` reads it."""
    save_checkpoint(model, path, KIND)
    return Path(path)


def load_jepa(path: str | Path, expected_sha256: str | None = None) -> FinJEPA:
    """Rebuild a FinJEPA (CPU, eval mode) from a ``save_jepa`` file; never unpickles."""
    return load_checkpoint(path, KIND, expected_sha256)
