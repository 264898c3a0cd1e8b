"""Model files never execute code and are refused when they changed: the one checkpoint format (safetensors + JSON
config) and the SHA-256 recorded on each registered version. Real sqlite MLflow store, real artifact files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from fin_ia_models.tokenizer.checkpoint import load_tokenizer, save_tokenizer
from fin_ia_models.tokenizer.config import TokenizerConfig
from fin_ia_models.tokenizer.model import TokenizerModel
from fin_ia_models.tracking.runs import (SHA_TAG, MODEL_FILE, TrackingTarget, load_registered_model,
                                         log_trained_model, resolve_model_version)
from fin_ia_models.training.checkpoint import CheckpointError, checkpoint_extra, load_checkpoint, save_checkpoint
from fin_ia_models.training.result import TrainingResult

TINY = TokenizerConfig(quantizer="fsq", hidden_dim=8, latent_dim=4, n_layers=4)


class RunsShell:
    """A pickle payload that would create ``marker`` if it were ever unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def tiny() -> TokenizerModel:
    torch.manual_seed(0)
    return TokenizerModel(TINY).eval()


@pytest.fixture()
def registered(tmp_path):
    target = TrackingTarget(f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "artifacts").as_uri())
    result = TrainingResult(tiny(), TINY, 0, history=[], metrics={"score": 1.0})
    logged = log_trained_model(target, experiment="fin-ia-tok", model_name="fin-ia-tok", kind="tokenizer",
                               result=result, upstream=[], tags={}, params={})
    mv = resolve_model_version(target.tracking_uri, logged.model_uri)
    artifact = Path(mv.source.removeprefix("file://")) / MODEL_FILE
    return target, logged, artifact


def test_a_replaced_artifact_is_refused_and_never_unpickled(registered, tmp_path):
    target, logged, artifact = registered
    marker = tmp_path / "pwned"
    artifact.write_bytes(pickle.dumps(RunsShell(marker)))
    with pytest.raises(CheckpointError, match="does not match the recorded"):
        load_registered_model(target.tracking_uri, logged.model_uri)
    assert not marker.exists()


def test_a_tampered_artifact_with_a_forged_hash_is_still_not_executed(registered, tmp_path):
    from mlflow import MlflowClient

    from fin_ia_models.training.checkpoint import sha256_bytes

    target, logged, artifact = registered
    marker = tmp_path / "pwned"
    payload = pickle.dumps(RunsShell(marker))
    artifact.write_bytes(payload)
    MlflowClient(target.tracking_uri, target.tracking_uri).set_model_version_tag(
        "fin-ia-tok", logged.version, SHA_TAG, sha256_bytes(payload))  # the attacker rewrote the tag too
    with pytest.raises(CheckpointError, match="not a fin-ia checkpoint"):
        load_registered_model(target.tracking_uri, logged.model_uri)
    assert not marker.exists()


def test_a_version_without_a_recorded_hash_is_refused(registered):
    from mlflow import MlflowClient

    target, logged, _ = registered
    MlflowClient(target.tracking_uri, target.tracking_uri).delete_model_version_tag("fin-ia-tok", logged.version,
                                                                                    SHA_TAG)
    with pytest.raises(CheckpointError, match="no fin_ia.artifact_sha256 tag"):
        load_registered_model(target.tracking_uri, logged.model_uri)


def test_checkpoint_round_trip_and_refusals(tmp_path):
    model = tiny()
    path = save_tokenizer(model, tmp_path / "tok.safetensors", extra={"seed": 3})
    loaded = load_tokenizer(path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert checkpoint_extra(path) == {"seed": 3} and not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(CheckpointError, match="holds a 'tokenizer' model, expected jepa"):
        load_checkpoint(path, kind="jepa")
    # a classic torch.save pickle is not read at all
    marker = tmp_path / "pwned"
    legacy = tmp_path / "legacy.pt"
    torch.save({"payload": RunsShell(marker)}, legacy)
    with pytest.raises(CheckpointError, match="not a fin-ia checkpoint"):
        load_checkpoint(legacy)
    assert not marker.exists()
    # non-finite weights
    broken = tiny()
    with torch.no_grad():
        next(broken.parameters()).view(-1)[0] = float("nan")
    save_checkpoint(broken, tmp_path / "nan.safetensors", "tokenizer")
    with pytest.raises(CheckpointError, match="non-finite"):
        load_checkpoint(tmp_path / "nan.safetensors")
    # one flipped byte in the tensor payload: caught by the hash when one is given
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40
    (tmp_path / "flipped.safetensors").write_bytes(bytes(data))
    from fin_ia_models.training.checkpoint import sha256_bytes

    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(tmp_path / "flipped.safetensors", expected_sha256=sha256_bytes(path.read_bytes()))
    with pytest.raises(CheckpointError, match="cannot read the checkpoint"):
        load_checkpoint(tmp_path / "absent.safetensors")
    assert np.isfinite(load_tokenizer(path).encode(torch.zeros(1, 16, 5))[1].numpy()).all()
