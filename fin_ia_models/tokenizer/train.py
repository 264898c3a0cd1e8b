"""The training entry point of the tokenizer: plain arguments in (candles, config, seed, output dir), a
``TrainingResult`` out (model, held-out metrics, per-epoch history, checkpoint path). Wiring only.

With ``checkpoint_dir`` the run is preemption-safe (``fin_ia_models.utils.preemption``): it resumes from the
checkpoint found there, saves one every ``checkpoint_every_n_steps`` optimizer steps and on SIGTERM."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import TensorDataset

from fin_ia_models.tokenizer.checkpoint import save_tokenizer
from fin_ia_models.tokenizer.config import TokenizerConfig
from fin_ia_models.tokenizer.features import Patches, step_ms, make_patches
from fin_ia_models.tokenizer.lightning_module import TokenizerLightning
from fin_ia_models.tokenizer.metrics import evaluate_patches
from fin_ia_models.tokenizer.model import TokenizerModel
from fin_ia_models.training.lightning_fit import fit_resumably
from fin_ia_models.training.result import TrainingResult
from fin_ia_models.utils.device import choose_device
from fin_ia_models.utils.preemption import ResumableLoader, training_fingerprint
from fin_ia_models.utils.seeding import seed_everything

log = logging.getLogger("fin_ia.tokenizer")


def _frames(candles) -> list[pd.DataFrame]:
    frames = list(candles.values()) if isinstance(candles, dict) else list(candles)
    if not frames:
        raise ValueError("train_tokenizer needs at least one candle frame")
    return frames


def split_patches(frames: list[pd.DataFrame], config: TokenizerConfig,
                  eval_frames: list[pd.DataFrame] | None) -> tuple[Patches, Patches]:
    """Training patches (stride ``train_stride``) and held-out patches (non-overlapping, stride ``patch_len``).

    Without ``eval_frames`` the last ``val_fraction`` of each series (in time) is held out; held-out patches lie
    entirely after the cut, training patches entirely before it.
    """
    c = config
    train_parts, eval_parts = [], []
    for series, frame in enumerate(frames):
        if eval_frames is not None or len(frame) == 0:
            train_parts.append(make_patches(frame, c.patch_len, c.train_stride, c.volume_window, c.return_scale,
                                            series))
            continue
        if c.val_fraction <= 0:
            raise ValueError("val_fraction is 0 and no eval_candles were given: nothing to measure on")
        ts = frame["timestamp"].to_numpy(np.int64)
        cut = int(ts[int(len(ts) * (1 - c.val_fraction))])
        train_frame = frame[frame["timestamp"] < cut]
        train_frame.attrs = dict(frame.attrs)
        train_parts.append(make_patches(train_frame, c.patch_len, c.train_stride, c.volume_window, c.return_scale,
                                        series))
        held = make_patches(frame, c.patch_len, None, c.volume_window, c.return_scale, series)
        first_candle = held.end_timestamp - (c.patch_len - 1) * step_ms(frame)
        keep = first_candle >= cut
        eval_parts.append(Patches(held.values[keep], held.end_timestamp[keep], held.series[keep]))
    if eval_frames is not None:
        eval_parts = [make_patches(f, c.patch_len, None, c.volume_window, c.return_scale, i)
                      for i, f in enumerate(eval_frames)]
    train, held_out = Patches.concat(train_parts), Patches.concat(eval_parts)
    if len(train) == 0 or len(held_out) == 0:
        raise ValueError(f"not enough valid patches: {len(train)} for training, {len(held_out)} held out")
    return train, held_out


def train_tokenizer(
    candles: list[pd.DataFrame] | dict[str, pd.DataFrame],
    config: TokenizerConfig,
    seed: int,
    output_dir: str | Path,
    eval_candles: list[pd.DataFrame] | dict[str, pd.DataFrame] | None = None,
    prefer_cuda: bool = True,
    num_threads: int | None = None,
    model: TokenizerModel | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every_n_steps: int = 0,
) -> TrainingResult:
    """Train a tokenizer on ``candles`` and write ``output_dir/tokenizer_<quantizer>.safetensors`` atomically.

    ``eval_candles``: held-out frames for the metrics (else the last ``val_fraction`` of each series).
    ``num_threads``: torch CPU threads during training (restored afterwards). ``model``: start from this model
    instead of a fresh one (tests use it to plant dead codes); its config must equal ``config``.

    ``checkpoint_dir``: a folder owned by this one run (e.g. per Dagster run id and asset); None = no resumable
    checkpoints. When it holds ``last.ckpt`` from the same config, seed and training patches, training resumes
    there (weights, codebook buffers with dead-code counters and revival ring buffer, AdamW and LR-schedule state,
    epoch and batch position, shuffle order, RNG states, history); a checkpoint of another run is a ValueError.
    ``checkpoint_every_n_steps``: also save every that many optimizer steps (0 = only on SIGTERM and at the end).
    On SIGTERM the step in flight finishes, is saved, and ``TrainingPreempted`` is raised. On CPU the resumed run
    ends with the same weights as an uninterrupted one, bit for bit.

    Result: ``metrics`` are the held-out usage and reconstruction metrics plus ``revived_total``; ``info`` holds
    ``n_train_patches`` and ``n_eval_patches``; ``history`` one row per epoch.
    """
    started = time.perf_counter()
    seed_everything(seed)
    previous_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        frames = _frames(candles)
        eval_frames = _frames(eval_candles) if eval_candles is not None else None
        train, held_out = split_patches(frames, config, eval_frames)
        device = choose_device(prefer_cuda)
        if model is None:
            model = TokenizerModel(config)
        elif model.config != config:
            raise ValueError("the given model was built with a different config than the one passed")
        # each epoch's order comes from (seed, epoch) alone, so a resumed run replays the same remaining batches
        loader = ResumableLoader(TensorDataset(torch.from_numpy(train.values)), config.batch_size, seed, shuffle=True,
                                 drop_last=len(train) >= 2 * config.batch_size)
        steps_per_epoch = len(loader) if config.max_steps_per_epoch is None else min(len(loader),
                                                                                       config.max_steps_per_epoch)
        module = TokenizerLightning(model, steps_per_epoch * config.epochs,
                                    compile_model=config.compile and device.accelerator == "cuda")
        log.info("training %s tokenizer on %d patches (%d held out) on %s", config.quantizer, len(train),
                 len(held_out), device.device_name)
        fingerprint = training_fingerprint("tokenizer", config.to_dict(), seed, train.values)
        run = fit_resumably(module, loader, device, grad_clip=config.grad_clip, fingerprint=fingerprint,
                            checkpoint_dir=checkpoint_dir, checkpoint_every_n_steps=checkpoint_every_n_steps,
                            max_epochs=config.epochs, limit_train_batches=steps_per_epoch)
        if run.resumed_from:
            log.info("resumed from %s", run.resumed_from)
        metrics = evaluate_patches(model, held_out.values)
        metrics["revived_total"] = float(sum(row["revived"] for row in module.history))
        model = model.cpu().eval()
        path = save_tokenizer(model, Path(output_dir) / f"tokenizer_{config.quantizer}.safetensors",
                              extra={"seed": seed, "metrics": metrics, "history": module.history})
    finally:
        torch.set_num_threads(previous_threads)
    return TrainingResult(model, config, seed, module.history, metrics, device=device.device_name,
                          wall_time_s=time.perf_counter() - started, checkpoint_path=path,
                          info={"n_train_patches": len(train), "n_eval_patches": len(held_out)})
