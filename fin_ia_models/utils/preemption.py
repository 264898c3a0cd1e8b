"""Preemption-safe training for spot GPUs: full resumable checkpoints every N optimizer steps and at once on SIGTERM
(the spot preemption notice), written atomically, and automatic resumption on the retried step.

Built on Lightning's own resumption: ``trainer.save_checkpoint`` writes the module, optimizer, LR scheduler, loop
progress (global step, epoch, batch index) and the state of ``_Stateful`` data loaders; ``Trainer.fit(ckpt_path=...)``
restores all of it. This module adds what Lightning leaves out:

- the RNG state (torch CPU/CUDA, numpy, python), which Lightning does not checkpoint;
- a data order that can resume mid-epoch: a plain ``DataLoader`` restarts its epoch from the first batch on resume
  (Lightning only warns "dataloader is not resumable"); ``ResumableLoader`` draws each epoch's permutation from
  (seed, epoch) alone and tells Lightning how many samples of the epoch it has handed out;
- an atomic write (temporary sibling + fsync + ``os.replace``): ``ModelCheckpoint`` writes in place, so a kill
  during the write could leave a truncated ``last.ckpt``; and an integrity check: the file's SHA-256 is written beside
  it (``last.ckpt.sha256``) and verified before a resume, and a checkpoint holding non-finite weights or optimizer
  state is refused — a flipped byte or a NaN never resumes silently into a different or broken model;
- SIGTERM handling that is safe under an orchestrator. Lightning 2.6 (``trainer/connectors/signal_connector.py``)
  installs, for the duration of ``fit``, a handler that sets ``trainer.received_sigterm`` and then *also calls the
  handler that was installed before*; its loops then raise ``SIGTERMException`` (a ``SystemExit`` with exit code 0)
  at the next batch boundary, and nothing is saved unless a callback does it in ``on_exception``. Under Dagster the
  previous handler is the step worker's SIGTERM→SIGINT mapping, which raises an interrupt immediately, i.e. in the
  middle of a step, before Lightning's batch boundary is reached. ``PreemptionCheckpoint`` therefore replaces the
  SIGTERM handler while the training loop runs with one that only sets a flag; the step in flight finishes, the
  checkpoint is written at the end of it, and ``TrainingPreempted`` is raised (a non-zero exit, so a ``RetryPolicy``
  retries). Lightning restores the original handlers when ``fit`` ends.

Restored exactly on CPU (same seed → bit-identical final weights and history, tested): module weights and buffers,
optimizer and LR-scheduler state, global step / epoch / batch position, data order, RNG states. Not restored: wall
time and throughput (they count the current process only), torch.compile caches (recompiled), and on CUDA bitwise
equality (bf16/TF32 and atomics-based kernels are not deterministic there, not even between two uninterrupted runs).
A checkpoint written with ``torch.compile`` active (CUDA, ``config.compile``) has ``_orig_mod`` in its keys, so it
resumes only on a machine that compiles too. A SIGTERM during the very last step still raises ``TrainingPreempted``;
the retry then finds training complete and only runs what follows it.

A SIGTERM that arrives outside the training loop (data preparation, evaluation, export) gets the previously
installed behaviour; the last periodic checkpoint is what a retry resumes from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import random
import signal
import threading
from pathlib import Path
from typing import Any, Iterator

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint
from torch.utils.data import DataLoader, Dataset, Sampler

from fin_ia_models.utils.atomic import atomic_write_bytes, fsync_dir, temporary_sibling

log = logging.getLogger("fin_ia.training")

CHECKPOINT_NAME = "last.ckpt"  # the one resumable checkpoint kept in ``checkpoint_dir`` (overwritten in place)
META_KEY = "fin_ia_preemption"  # top-level key of the Lightning checkpoint holding our metadata and RNG states


class TrainingPreempted(RuntimeError):
    """Training stopped on SIGTERM after saving a resumable checkpoint; run the same call again to resume."""

    def __init__(self, checkpoint_path: Path, global_step: int) -> None:
        super().__init__(f"training preempted by SIGTERM: resumable checkpoint at step {global_step} saved to "
                         f"{checkpoint_path}; call the training entry point again with the same checkpoint_dir")
        self.checkpoint_path = checkpoint_path
        self.global_step = global_step


class ResumableSampler(Sampler[int]):
    """Indices of a dataset of ``n`` items, in an order that depends on (seed, epoch) only, resumable mid-epoch.

    With ``shuffle`` each epoch is a fresh permutation from ``np.random.default_rng((seed, epoch))`` (no generator
    state carried from epoch to epoch, so epoch 5 can be rebuilt without replaying epochs 0-4); without it, 0..n-1.
    ``state_dict`` records the epoch and how many indices of it were handed out; after ``load_state_dict`` the next
    iteration continues right after them.
    """

    def __init__(self, n: int, seed: int, shuffle: bool) -> None:
        if n < 1:
            raise ValueError(f"ResumableSampler needs at least one item, got n = {n}")
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.epoch = 0
        self._skip = 0  # indices of ``epoch`` already consumed before a resume
        self._handed_out = 0  # indices of ``epoch`` handed out so far (what a checkpoint records)

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this at every epoch start (``_set_sampler_epoch``); a new epoch starts from its beginning."""
        if epoch != self.epoch:
            self.epoch, self._skip, self._handed_out = epoch, 0, 0

    def order(self, epoch: int) -> np.ndarray:
        """The full index order (n,) of ``epoch``."""
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng((self.seed, epoch)).permutation(self.n)

    def __iter__(self) -> Iterator[int]:
        start, self._skip = self._skip, 0
        self._handed_out = start
        for index in self.order(self.epoch)[start:]:
            self._handed_out += 1
            yield int(index)

    def __len__(self) -> int:
        return self.n

    def state_dict(self) -> dict[str, int | bool]:
        return {"n": self.n, "seed": self.seed, "shuffle": self.shuffle, "epoch": self.epoch,
                "handed_out": self._handed_out}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = {"n": self.n, "seed": self.seed, "shuffle": self.shuffle}
        saved = {k: state[k] for k in mine}
        if saved != mine:
            raise ValueError(f"checkpointed sampler {saved} does not match this run's {mine}: different data or seed")
        self.epoch, self._skip, self._handed_out = int(state["epoch"]), int(state["handed_out"]), int(state["handed_out"])


class ResumableLoader(DataLoader):
    """Single-process ``DataLoader`` over a ``ResumableSampler``. Lightning sees ``state_dict``/``load_state_dict``
    (its ``_Stateful`` protocol), stores the sampler's position in the checkpoint and puts it back before the first
    batch of a resumed ``fit``. Its own generator keeps ``DataLoader.__iter__`` off torch's global RNG, so creating
    an iterator on resume does not shift the random numbers the model draws."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, shuffle: bool, drop_last: bool) -> None:
        sampler = ResumableSampler(len(dataset), seed, shuffle)
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, num_workers=0,
                         generator=torch.Generator().manual_seed(seed))
        self.resumable_sampler = sampler

    def state_dict(self) -> dict[str, int | bool]:
        return self.resumable_sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.resumable_sampler.load_state_dict(state)


def training_fingerprint(*parts: Any) -> str:
    """A digest of everything that decides a training run (config dicts, seed, training arrays). A checkpoint is only
    resumed by a run with the same fingerprint, so a reused ``checkpoint_dir`` cannot graft one run onto another."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, np.ndarray):
            array = np.ascontiguousarray(part)
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.view(np.uint8).reshape(-1).data)
        else:
            digest.update(json.dumps(part, sort_keys=True, default=repr).encode())
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _nonfinite(tree: Any, where: str = "") -> list[str]:
    """Paths of floating tensors with a NaN/inf anywhere in a nested checkpoint structure."""
    if isinstance(tree, torch.Tensor):
        return [where or "tensor"] if tree.is_floating_point() and not torch.isfinite(tree).all() else []
    if isinstance(tree, dict):
        return [bad for k, v in tree.items() for bad in _nonfinite(v, f"{where}.{k}" if where else str(k))]
    if isinstance(tree, (list, tuple)):
        return [bad for i, v in enumerate(tree) for bad in _nonfinite(v, f"{where}[{i}]")]
    return []


def verify_checkpoint(path: str | Path) -> None:
    """Refuse a resumable checkpoint that changed since it was written (SHA-256 sidecar) or that holds non-finite
    weights or optimizer state; every error names the file."""
    path = Path(path)
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.exists():
        raise ValueError(f"{path} has no {sidecar.name} beside it (written by an older version, or tampered): "
                         "delete the folder to start training over")
    actual, recorded = _file_sha256(path), sidecar.read_text().strip()
    if actual != recorded:
        raise ValueError(f"{path} is corrupt: SHA-256 {actual[:16]}… != {recorded[:16]}… recorded when it was "
                         "written; refusing to resume from it (delete the folder to start training over)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as err:  # torch.load on an unreadable file
        raise ValueError(f"{path} is not a readable checkpoint ({type(err).__name__}: {err})") from None
    bad = _nonfinite({"state_dict": ckpt.get("state_dict", {}), "optimizer_states": ckpt.get("optimizer_states", [])})
    if bad:
        raise ValueError(f"{path} holds non-finite values in {bad[:3]}: refusing to resume a broken training")


def checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """What a resumable checkpoint says about itself: ``global_step``, ``epoch``, ``reason`` (periodic, sigterm or
    complete), ``sigterm_step`` (global step when SIGTERM arrived, else None) and ``fingerprint``."""
    try:
        ckpt = torch.load(Path(path), map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as err:  # torch.load on an unreadable file
        raise ValueError(f"{path} is not a readable checkpoint ({type(err).__name__}: {err})") from None
    if META_KEY not in ckpt:
        raise ValueError(f"{path} is not a resumable fin-ia checkpoint (no {META_KEY!r} entry)")
    meta = {k: v for k, v in ckpt[META_KEY].items() if k != "rng"}
    return {"global_step": int(ckpt["global_step"]), "epoch": int(ckpt["epoch"]), **meta}


def resumable_checkpoint(checkpoint_dir: str | Path, fingerprint: str) -> Path | None:
    """The checkpoint in ``checkpoint_dir`` to resume from (pass it to ``Trainer.fit(ckpt_path=...)``), or None when
    there is none yet. A checkpoint of a different run (other config, seed or data) is a ValueError, not ignored."""
    path = Path(checkpoint_dir) / CHECKPOINT_NAME
    if not path.exists():
        return None
    verify_checkpoint(path)
    saved = checkpoint_meta(path)["fingerprint"]
    if saved != fingerprint:
        raise ValueError(f"{path} belongs to another training run (fingerprint {saved} != {fingerprint}): use one "
                         "checkpoint_dir per run and asset, or delete it to start over")
    return path


def capture_rng_state() -> dict[str, Any]:
    """Global RNG states as tensors and plain values, so Lightning's ``weights_only`` loading accepts them."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class PreemptionCheckpoint(Checkpoint):
    """Writes ``dirpath/last.ckpt`` every ``every_n_steps`` optimizer steps (0: never periodically), at the end of the
    step in flight when SIGTERM arrives (then raises ``TrainingPreempted``), and once more when training completes
    (so a retry after a later failure skips training). Each write is a whole Lightning checkpoint plus RNG states.

    ``fingerprint`` (see ``training_fingerprint``) is stored so that ``resumable_checkpoint`` can refuse a foreign run.
    """

    def __init__(self, dirpath: str | Path, every_n_steps: int, fingerprint: str) -> None:
        super().__init__()
        if every_n_steps < 0:
            raise ValueError(f"every_n_steps must be >= 0 (0 = only on SIGTERM and at the end), got {every_n_steps}")
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.fingerprint = fingerprint
        self.path = self.dirpath / CHECKPOINT_NAME
        self._trainer: L.Trainer | None = None
        self._sigterm_step: int | None = None  # global step when SIGTERM arrived
        self._replaced_handler: Any = None
        self._installed = False
        self._reason = "periodic"
        self._due_at_epoch_end = False  # a save due at an epoch's last batch waits for the end-of-epoch hooks

    # -- SIGTERM ---------------------------------------------------------------------------------------------------
    def _on_sigterm(self, signum: int, frame: Any) -> None:
        # only a flag: logging or saving here could re-enter code the main thread was in the middle of
        if self._sigterm_step is None and self._trainer is not None:
            self._sigterm_step = self._trainer.global_step

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._trainer = trainer
        if trainer.received_sigterm:  # arrived between Lightning's handler install and now
            self._sigterm_step = trainer.global_step
        if threading.current_thread() is not threading.main_thread():
            log.warning("training runs outside the main thread: SIGTERM cannot be caught, only periodic checkpoints")
            return
        self._replaced_handler = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self._installed = True

    def _restore_handler(self) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._replaced_handler)  # Lightning's; it restores the original after fit
            self._installed = False

    # -- saving ----------------------------------------------------------------------------------------------------
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        due = self._sigterm_step is not None or (
            self.every_n_steps > 0 and trainer.global_step % self.every_n_steps == 0)
        if not due:
            return
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            # Lightning resumes a state saved after an epoch's last batch but before its end-of-epoch hooks by skipping
            # those hooks (and the next epoch's start hooks); saved from on_train_epoch_end it resumes cleanly
            self._due_at_epoch_end = True
            return
        self._checkpoint_now(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Checkpoint callbacks run after the LightningModule's on_train_epoch_end, so the epoch's history is in
        if self._due_at_epoch_end or self._sigterm_step is not None:
            self._due_at_epoch_end = False
            self._checkpoint_now(trainer)

    def _checkpoint_now(self, trainer: L.Trainer) -> None:
        step = trainer.global_step
        if self._sigterm_step is None:
            self.save(trainer, "periodic")
            return
        self.save(trainer, "sigterm")
        log.warning("SIGTERM at step %d: saved resumable checkpoint at step %d to %s", self._sigterm_step, step,
                    self.path)
        raise TrainingPreempted(self.path, step)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_handler()
        self.save(trainer, "complete")

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # mid-step state is not resumable: keep the last checkpoint written at a step boundary
        self._restore_handler()

    def save(self, trainer: L.Trainer, reason: str) -> Path:
        """Write the whole training state to ``last.ckpt`` atomically (temporary sibling, fsync, ``os.replace``; the
        same steps as ``fin_ia_models.utils.atomic``, which cannot wrap Lightning's own path-based writer) and its
        SHA-256 to ``last.ckpt.sha256``."""
        self.dirpath.mkdir(parents=True, exist_ok=True)
        tmp = temporary_sibling(self.path)
        self._reason = reason
        try:
            trainer.save_checkpoint(tmp, weights_only=False)
            with open(tmp, "rb") as handle:  # without fsync a VM that dies soon after could keep an empty file
                os.fsync(handle.fileno())
            digest = _file_sha256(tmp)
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        # also deletes a temporary that a training killed mid-save (SIGKILL, OOM) left in this folder
        atomic_write_bytes(self.path.with_name(CHECKPOINT_NAME + ".sha256"), digest.encode())
        fsync_dir(self.dirpath)
        log.info("saved %s checkpoint at step %d to %s", reason, trainer.global_step, self.path)
        return self.path

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[META_KEY] = {"reason": self._reason, "sigterm_step": self._sigterm_step,
                                "fingerprint": self.fingerprint, "rng": capture_rng_state()}

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        meta = checkpoint.get(META_KEY)
        if meta is None:
            raise ValueError("resuming from a checkpoint without fin-ia preemption metadata (RNG state unknown)")
        # Lightning restores callbacks before the first batch is drawn, so the next step sees the saved RNG state
        restore_rng_state(meta["rng"])
        log.info("resuming from a %s checkpoint at step %d", meta["reason"], checkpoint["global_step"])
