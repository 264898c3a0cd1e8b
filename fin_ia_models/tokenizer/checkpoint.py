"""Tokenizer checkpoints in the one fin-ia format (``fin_ia_models.training.checkpoint``): safetensors weights and
codebook buffers, the config in the header, written atomically; loading never unpickles."""

from __future__ import annotations

from pathlib import Path

from fin_ia_models.tokenizer.model import TokenizerModel
from fin_ia_models.training.checkpoint import load_checkpoint, save_checkpoint

KIND = "tokenizer"


def save_tokenizer(model: TokenizerModel, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``model`` (and ``extra``: seed, metrics, history) to ``path`` atomically."""
    save_checkpoint(model, path, KIND, extra)
    return Path(path)


def load_tokenizer(path: str | Path, expected_sha256: str | None = None) -> TokenizerModel:
    """Rebuild a ``TokenizerModel`` (CPU, eval mode) from a file written by ``save_tokenizer``."""
    return load_checkpoint(path, KIND, expected_sha256)
