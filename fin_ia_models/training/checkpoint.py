"""The one model checkpoint format of every stage: tensors in a safetensors file, the config as JSON in its header.

Why not ``torch.save``/pickle: unpickling runs code, so a tampered model file in an artifact store would execute on
load. A safetensors file holds only tensors and a string header; the model class is looked up in this module's fixed
table of ``kind``s (never taken from the file), built from its config dataclass, and loaded with ``strict=True``.
Writes go through the one fsync'd atomic writer; ``save_checkpoint`` returns the file's SHA-256, which the registry
records so a loader can refuse a file that changed since (``expected_sha256``). Non-finite weights are refused.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import struct
from pathlib import Path
from typing import Any

from fin_ia_models.utils.atomic import atomic_write_bytes

FORMAT = "fin-ia-checkpoint/1"
# kind → (model class, config class), as "module:attribute" so nothing heavy is imported until a model is loaded.
# A new stage adds its line here; the file can only name one of these, never a class of its own choosing.
MODEL_KINDS: dict[str, tuple[str, str]] = {
    "tokenizer": ("fin_ia_models.tokenizer.model:TokenizerModel", "fin_ia_models.tokenizer.config:TokenizerConfig"),
    "jepa": ("fin_ia_models.world_model.jepa:FinJEPA", "fin_ia_models.world_model.config:JEPAConfig"),
    "cvar_planner": ("fin_ia_models.agents.planner:CVaRPlannerAgent", "fin_ia_models.agents.planner_config:PlannerSpec"),
    "ppo_policy": ("fin_ia_models.agents.ppo_policy:PPOPolicy", "fin_ia_models.agents.ppo_policy:PPOPolicySpec"),
    "multiverse": ("fin_ia_models.multiverse.model:MultiverseModel", "fin_ia_models.multiverse.config:MultiverseConfig"),
}


class CheckpointError(ValueError):
    """A model file that cannot be trusted or read: wrong format, unknown kind, hash mismatch, non-finite weights."""


def _resolve(ref: str):
    module, attribute = ref.split(":")
    return getattr(importlib.import_module(module), attribute)


def kind_of(model) -> str:
    """The ``MODEL_KINDS`` entry of ``model``'s class."""
    ref = f"{type(model).__module__}:{type(model).__qualname__}"
    for kind, (model_ref, _) in MODEL_KINDS.items():
        if model_ref == ref:
            return kind
    raise CheckpointError(f"{ref} is not a registered model kind (add it to MODEL_KINDS): {', '.join(MODEL_KINDS)}")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checkpoint_bytes(model, kind: str, extra: dict[str, Any] | None = None) -> bytes:
    """The safetensors bytes of ``model`` (its ``config`` goes in the header)."""
    from safetensors.torch import save

    if kind not in MODEL_KINDS:
        raise CheckpointError(f"unknown model kind {kind!r}: expected one of {', '.join(MODEL_KINDS)}")
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    header = {"format": FORMAT, "kind": kind, "config": json.dumps(model.config.to_dict()),
              "extra": json.dumps(extra or {}, default=float)}
    return save(tensors, metadata=header)


def save_checkpoint(model, path: str | Path, kind: str, extra: dict[str, Any] | None = None) -> str:
    """Write ``model`` to ``path`` atomically; returns the SHA-256 of the file."""
    data = checkpoint_bytes(model, kind, extra)
    atomic_write_bytes(Path(path), data)
    return sha256_bytes(data)


def read_header(data: bytes, source: str) -> dict[str, str]:
    """The string metadata of a safetensors blob (8-byte little-endian header length, then a JSON header)."""
    if len(data) < 8:
        raise CheckpointError(f"{source}: not a fin-ia checkpoint (file of {len(data)} bytes)")
    (length,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8:8 + length])
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{source}: not a fin-ia checkpoint (unreadable safetensors header)") from None
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{source}: not a fin-ia checkpoint (format {meta.get('format')!r}, expected {FORMAT})")
    return meta


def load_checkpoint_bytes(data: bytes, source: str, kind: str | None = None, expected_sha256: str | None = None):
    """Rebuild the model in ``data`` (CPU, eval mode). ``kind`` (if given) must match the file's; ``expected_sha256``
    (if given) must match the bytes — otherwise ``CheckpointError`` naming ``source``."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load

    if expected_sha256 is not None and sha256_bytes(data) != expected_sha256:
        raise CheckpointError(f"{source}: SHA-256 {sha256_bytes(data)[:16]}… does not match the recorded "
                              f"{expected_sha256[:16]}…: the file changed after it was registered; refusing to load it")
    meta = read_header(data, source)
    if meta.get("kind") not in MODEL_KINDS or (kind is not None and meta["kind"] != kind):
        raise CheckpointError(f"{source}: holds a {meta.get('kind')!r} model, expected {kind or list(MODEL_KINDS)}")
    model_ref, config_ref = MODEL_KINDS[meta["kind"]]
    config = _resolve(config_ref).from_dict(json.loads(meta["config"]))
    try:
        tensors = load(data)
    except SafetensorError as err:  # a torn or tampered payload
        raise CheckpointError(f"{source}: unreadable tensors ({err})") from None
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"{source}: non-finite values in {bad[:5]}: refusing to load a broken model")
    model = _resolve(model_ref)(config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{source}: tensors do not fit a {meta['kind']} model of its config ({err})") from None
    return model.eval()


def load_checkpoint(path: str | Path, kind: str | None = None, expected_sha256: str | None = None):
    """``load_checkpoint_bytes`` of a file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({err.strerror})") from None
    return load_checkpoint_bytes(data, str(path), kind, expected_sha256)


def checkpoint_extra(path: str | Path) -> dict[str, Any]:
    """The ``extra`` dict stored with a checkpoint (seed, metrics, history of the training that wrote it)."""
    return json.loads(read_header(Path(path).read_bytes(), str(path)).get("extra", "{}"))
