"""Saving (atomically) and loading tokenizer checkpoints: config + weights + codebook buffers + metrics."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from fin_ia_models.tokenizer.config import TokenizerConfig
from fin_ia_models.tokenizer.model import TokenizerModel

FORMAT_VERSION = 1


def save_tokenizer(model: TokenizerModel, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``model`` to ``path`` through a temporary file in the same folder + ``os.replace`` (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format_version": FORMAT_VERSION, "config": model.config.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "extra": extra or {}}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_tokenizer(path: str | Path, map_location: str = "cpu") -> TokenizerModel:
    """Rebuild a ``TokenizerModel`` from a checkpoint written by ``save_tokenizer`` (eval mode)."""
    payload = torch.load(Path(path), map_location=map_location, weights_only=False)
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"unsupported tokenizer checkpoint format {payload.get('format_version')!r} in {path}")
    model = TokenizerModel(TokenizerConfig.from_dict(payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()
