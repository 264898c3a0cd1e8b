"""Preemption-safe training (fin_ia_models.utils.preemption): a tiny tokenizer / Fin-JEPA run in a subprocess is
sent SIGTERM after its first periodic checkpoint, saves at the step it was in, exits non-zero, is started again
with the same arguments, resumes at the saved step and ends with exactly the weights of an uninterrupted run (CPU,
same seed). Plus the resumable sampler, an end-of-epoch preemption, and the guard rails.

This file is also the subprocess worker: ``python tests/test_preemption.py WORKER_ARGS_JSON``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from fin_ia_models.tokenizer.config import TokenizerConfig
from fin_ia_models.tokenizer.lightning_module import TokenizerLightning
from fin_ia_models.tokenizer.train import train_tokenizer
from fin_ia_models.training.checkpoint import checkpoint_extra
from fin_ia_models.utils.preemption import (CHECKPOINT_NAME, ResumableSampler, TrainingPreempted, checkpoint_meta)
from fin_ia_models.world_model.config import JEPAConfig, Mamba2Config, MaskingConfig
from fin_ia_models.world_model.lightning_module import JEPALightning
from fin_ia_models.world_model.train import train_jepa

HOUR = 3_600_000
EVERY = 4  # periodic checkpoint interval (optimizer steps) in the subprocess runs
TOKENIZER = TokenizerConfig(quantizer="vq", codebook_size=32, hidden_dim=16, latent_dim=8, n_layers=4, batch_size=64,
                            epochs=3, max_steps_per_epoch=4, dead_code_steps=3, revival_buffer_size=256, lr=3e-3,
                            train_stride=4, val_fraction=0.2)  # 12 steps (4 batches an epoch); dead codes get revived (uses torch's RNG)
JEPA = JEPAConfig(vocab_size=32, mixer=Mamba2Config(d_model=32, headdim=16, d_state=8, chunk_size=16), n_layers=1,
                  seq_len=64, batch_size=8, max_steps=16, lr=3e-3,
                  masking=MaskingConfig(n_blocks=2, block_ratio=(0.1, 0.2), min_context=4))
TOTAL_STEPS = {"tokenizer": TOKENIZER.epochs * TOKENIZER.max_steps_per_epoch, "jepa": JEPA.max_steps}
WEIGHTS_FILE = {"tokenizer": "tokenizer_vq.safetensors", "jepa": "jepa_encoder.safetensors"}


def _candles(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vol = np.repeat(rng.choice([0.002, 0.01, 0.02], n // 32 + 1), 32)[:n]
    close = 100 * np.exp(np.cumsum(vol * rng.standard_normal(n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    frame = pd.DataFrame({"timestamp": 1_600_000_000_000 // HOUR * HOUR + HOUR * np.arange(n, dtype=np.int64),
                          "open": open_, "high": np.maximum(open_, close) * (1 + vol),
                          "low": np.minimum(open_, close) * (1 - vol), "close": close,
                          "volume": rng.lognormal(3, 0.5, n)})
    frame.attrs.update(symbol="A/USDT", timeframe="1h")
    return frame


def _tokens(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    toks = [0]
    for _ in range(n - 1):  # a Markov chain, so there is something to learn
        toks.append((toks[-1] * 3 + int(rng.integers(0, 3))) % 32)
    return pd.DataFrame({"end_timestamp": np.arange(n, dtype=np.int64) * 57_600_000, "token": np.array(toks)})


def _train(kind: str, out: Path, **checkpointing):
    if kind == "tokenizer":
        return train_tokenizer({"A/USDT": _candles(1500, 1)}, TOKENIZER, 5, out, prefer_cuda=False, **checkpointing)
    return train_jepa({"AAA": _tokens(300, 1), "BBB": _tokens(200, 2)}, JEPA, 3, out, **checkpointing)


def _worker(args: dict) -> None:
    """The subprocess: one training call, steps slowed down so the parent can signal mid-run, a counter of the steps
    this process ran, and a SIGTERM handler that raises at once (as Dagster's step worker installs) which the
    training loop must keep from interrupting a step."""
    import logging

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    module_cls = TokenizerLightning if args["kind"] == "tokenizer" else JEPALightning
    original_step, ran = module_cls.training_step, []

    def slow_step(self, batch, batch_idx):
        time.sleep(args["step_sleep_s"])  # wall time only: the numbers are untouched
        ran.append(self.global_step)
        return original_step(self, batch, batch_idx)

    module_cls.training_step = slow_step

    def interrupt_now(signum, frame):
        raise KeyboardInterrupt("SIGTERM outside the training loop")

    signal.signal(signal.SIGTERM, interrupt_now)
    try:
        _train(args["kind"], Path(args["out"]), checkpoint_dir=args["ckpt"], checkpoint_every_n_steps=EVERY)
    finally:
        print(f"steps run in this process: {len(ran)}", file=sys.stderr, flush=True)


def _start(kind: str, tmp_path: Path) -> subprocess.Popen:
    args = {"kind": kind, "out": str(tmp_path / "out"), "ckpt": str(tmp_path / "ckpt"), "step_sleep_s": 0.12}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, __file__, json.dumps(args)], stderr=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).resolve().parents[1])


def _steps_run(stderr: str) -> int:
    found = re.findall(r"steps run in this process: (\d+)", stderr)
    assert found, stderr[-3000:]
    return int(found[-1])




@pytest.mark.parametrize("kind", ["tokenizer", "jepa"])
def test_sigterm_then_restart_resumes_and_matches_uninterrupted_run(kind, tmp_path):
    total = TOTAL_STEPS[kind]
    ckpt = tmp_path / "ckpt" / CHECKPOINT_NAME
    first = _start(kind, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not ckpt.exists():  # the first periodic checkpoint (step EVERY)
            assert first.poll() is None, f"worker ended before its first checkpoint:\n{first.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "no periodic checkpoint within 60 s"
            time.sleep(0.02)
        first.send_signal(signal.SIGTERM)
        _, err1 = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode != 0 and "TrainingPreempted" in err1, err1[-3000:]
    meta = checkpoint_meta(ckpt)
    saved, at_sigterm = meta["global_step"], meta["sigterm_step"]
    # saved at the end of the step that was in flight when SIGTERM came (or that step had just ended)
    assert meta["reason"] == "sigterm" and EVERY <= at_sigterm <= saved <= at_sigterm + 1, meta
    assert saved < total, f"SIGTERM came too late to test resumption: {meta}"
    assert _steps_run(err1) == saved  # no step was cut in the middle and none was lost

    second = _start(kind, tmp_path)  # the retry: same arguments
    _, err2 = second.communicate(timeout=90)
    assert second.returncode == 0, err2[-3000:]
    assert f"resuming from a sigterm checkpoint at step {saved}" in err2
    assert _steps_run(err2) == total - saved
    assert checkpoint_meta(ckpt)["reason"] == "complete"

    reference = _train(kind, tmp_path / "reference")  # uninterrupted, no checkpointing
    resumed = load_file(tmp_path / "out" / WEIGHTS_FILE[kind])
    expected = reference.model.state_dict()
    assert resumed.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(resumed[name], tensor), name
    if kind == "tokenizer":  # per-epoch history, accumulated over the two processes, is the uninterrupted one too
        assert checkpoint_extra(tmp_path / "out" / WEIGHTS_FILE[kind])["history"] == reference.history


def test_sigterm_on_the_last_batch_of_an_epoch_resumes_exactly(tmp_path, monkeypatch):
    """Lightning skips the end-of-epoch hooks when resuming from a state saved after an epoch's last batch; the
    checkpoint is therefore written from on_train_epoch_end. In-process: the run signals itself."""
    last_of_epoch_0 = TOKENIZER.max_steps_per_epoch - 1
    original = TokenizerLightning.training_step

    def signalling_step(self, batch, batch_idx):
        if self.global_step == last_of_epoch_0 and not getattr(self, "_signalled", False):
            self._signalled = True
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, batch, batch_idx)

    monkeypatch.setattr(TokenizerLightning, "training_step", signalling_step)
    with pytest.raises(TrainingPreempted) as preempted:
        _train("tokenizer", tmp_path / "out", checkpoint_dir=tmp_path / "ckpt")
    assert preempted.value.global_step == TOKENIZER.max_steps_per_epoch
    resumed = _train("tokenizer", tmp_path / "out", checkpoint_dir=tmp_path / "ckpt")
    monkeypatch.undo()
    reference = _train("tokenizer", tmp_path / "reference")
    assert resumed.history == reference.history and len(resumed.history) == TOKENIZER.epochs
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert not list((tmp_path / "ckpt").glob("*.tmp"))  # atomic writes leave no temporary file behind


def test_resumable_sampler_order_and_resume():
    sampler = ResumableSampler(10, seed=7, shuffle=True)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert sorted(epoch0) == list(range(10)) and epoch0 != epoch1
    assert list(ResumableSampler(10, seed=7, shuffle=True)) == epoch0  # the order depends on (seed, epoch) only
    assert list(ResumableSampler(10, seed=8, shuffle=True)) != epoch0
    assert list(ResumableSampler(5, seed=7, shuffle=False)) == [0, 1, 2, 3, 4]
    it = iter(sampler)
    taken = [next(it) for _ in range(4)]
    state = sampler.state_dict()
    assert state["epoch"] == 1 and state["handed_out"] == 4
    fresh = ResumableSampler(10, seed=7, shuffle=True)
    fresh.load_state_dict(state)
    fresh.set_epoch(1)  # Lightning sets the same epoch again on resume: the position must survive it
    assert taken + list(fresh) == epoch1
    assert list(fresh) == epoch1  # the next pass over the same epoch starts from its beginning
    with pytest.raises(ValueError, match="different data or seed"):
        ResumableSampler(11, seed=7, shuffle=True).load_state_dict(state)


def test_guard_rails(tmp_path):
    with pytest.raises(ValueError, match="checkpoint_every_n_steps"):
        _train("jepa", tmp_path / "out", checkpoint_every_n_steps=5)
    with pytest.raises(ValueError, match="checkpoint_every_n_steps"):
        _train("jepa", tmp_path / "out", checkpoint_dir=tmp_path / "ckpt", checkpoint_every_n_steps=-1)
    small = dataclasses.replace(JEPA, max_steps=3)
    seqs = {"AAA": _tokens(300, 1)}
    train_jepa(seqs, small, 3, tmp_path / "out", checkpoint_dir=tmp_path / "ckpt")
    assert checkpoint_meta(tmp_path / "ckpt" / CHECKPOINT_NAME)["reason"] == "complete"
    with pytest.raises(ValueError, match="belongs to another training run"):  # other seed, same folder
        train_jepa(seqs, small, 4, tmp_path / "out", checkpoint_dir=tmp_path / "ckpt")


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]))


def test_a_corrupted_resume_checkpoint_is_refused_not_resumed(tmp_path):
    """A flipped byte or a NaN in the resumable checkpoint never resumes silently into a different or broken model:
    resuming names the file and refuses (fault-injection corpus: flips at 16 positions, a NaN in the weights, a NaN
    in the optimizer state, a truncated file, a missing hash file)."""
    from fin_ia_models.utils.preemption import resumable_checkpoint, verify_checkpoint

    folder = tmp_path / "ckpt"
    _train("jepa", tmp_path / "out", checkpoint_dir=folder, checkpoint_every_n_steps=EVERY)
    path = folder / CHECKPOINT_NAME
    verify_checkpoint(path)  # the intact one passes
    fingerprint = checkpoint_meta(path)["fingerprint"]
    good = path.read_bytes()
    rng = np.random.default_rng(0)
    for position in rng.choice(len(good), size=16, replace=False):
        flipped = bytearray(good)
        flipped[position] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(flipped))
        with pytest.raises(ValueError, match=f"{path}.*corrupt"):
            resumable_checkpoint(folder, fingerprint)
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        resumable_checkpoint(folder, fingerprint)
    sidecar = folder / (CHECKPOINT_NAME + ".sha256")
    for where in ("state_dict", "optimizer_states"):
        ckpt = torch.load(io.BytesIO(good), weights_only=False)
        if where == "state_dict":
            next(iter(ckpt["state_dict"].values())).view(-1)[0] = float("nan")
        else:
            next(iter(ckpt["optimizer_states"][0]["state"].values()))["exp_avg"].view(-1)[0] = float("inf")
        torch.save(ckpt, path)  # as if the NaN had been in memory when the checkpoint was written: hash matches
        sidecar.write_text(hashlib.sha256(path.read_bytes()).hexdigest())
        with pytest.raises(ValueError, match=f"{path}.*non-finite"):
            resumable_checkpoint(folder, fingerprint)
    sidecar.unlink()
    with pytest.raises(ValueError, match="has no last.ckpt.sha256"):
        resumable_checkpoint(folder, fingerprint)
