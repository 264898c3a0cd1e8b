"""Token-sequence frames (Strate I's output contract) → tensors for Fin-JEPA.

A token-sequence frame has ``end_timestamp`` int64 (ms, strictly increasing), ``token`` int64 in [0, vocab_size),
optional ``latent_0..latent_{k-1}`` float32 and optional ``exo_vol``, ``exo_volume`` float32 (the exo-clock's causal
z-scores, see ``exo_signals.py``). Exo signals come from, in order: those columns in the frame, else a separate frame
``end_timestamp, exo_vol, exo_volume`` that must cover every end_timestamp exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fin_ia_models.world_model.config import JEPAConfig
from fin_ia_models.world_model.exo_signals import EXO_COLUMNS


@dataclass(frozen=True)
class SequenceArrays:
    end_timestamp: np.ndarray  # (l,) int64
    tokens: np.ndarray  # (l,) int64
    latents: np.ndarray | None  # (l, n_latent) float32
    exo: np.ndarray | None  # (l, 2) float32


def latent_columns(frame: pd.DataFrame) -> list[str]:
    cols = [c for c in frame.columns if c.startswith("latent_")]
    return sorted(cols, key=lambda c: int(c.split("_", 1)[1]))


def sequence_arrays(frame: pd.DataFrame, config: JEPAConfig, exo: pd.DataFrame | None = None) -> SequenceArrays:
    """Validate one token-sequence frame against ``config`` and return its arrays."""
    for col in ("end_timestamp", "token"):
        if col not in frame.columns:
            raise ValueError(f"token sequence frame lacks column {col!r}; has {list(frame.columns)}")
    ts = frame["end_timestamp"].to_numpy(np.int64)
    if len(ts) > 1 and not (np.diff(ts) > 0).all():
        raise ValueError("end_timestamp must be strictly increasing")
    tokens = frame["token"].to_numpy(np.int64)
    if len(tokens) and (tokens.min() < 0 or tokens.max() >= config.vocab_size):
        raise ValueError(f"tokens must lie in [0, {config.vocab_size}), got [{tokens.min()}, {tokens.max()}]")
    latents = None
    if config.n_latent > 0:
        cols = latent_columns(frame)
        if len(cols) != config.n_latent:
            raise ValueError(f"config.n_latent = {config.n_latent} but the frame has {len(cols)} latent_* columns")
        latents = frame[cols].to_numpy(np.float32)
    exo_arr = None
    if config.mixer.exo.enabled:
        if all(c in frame.columns for c in EXO_COLUMNS):
            exo_arr = frame[list(EXO_COLUMNS)].to_numpy(np.float32)
        elif exo is not None:
            merged = pd.DataFrame({"end_timestamp": ts}).merge(exo, on="end_timestamp", how="left")
            if merged[list(EXO_COLUMNS)].isna().any().any():
                raise ValueError("exo frame does not cover every end_timestamp of the token sequence")
            exo_arr = merged[list(EXO_COLUMNS)].to_numpy(np.float32)
        else:
            raise ValueError(f"the exo-clock is enabled: give {EXO_COLUMNS} columns or an exo frame")
    return SequenceArrays(ts, tokens, latents, exo_arr)
