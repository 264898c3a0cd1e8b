"""Token-sequence frames (Strate I's output contract) → tensors for Fin-JEPA.

A token-sequence frame has ``end_timestamp`` int64 (ms, strictly increasing), ``token`` int64 in [0, vocab_size),
optional ``latent_0..latent_{k-1}`` float32 and optional ``exo_vol``, ``exo_volume`` float32 (the exo-clock's causal
z-scores) and ``scale_ret``, ``scale_volume`` (the patch's scale, see ``exo_signals.py``). Exo columns come from, in
order: those columns in the frame, else a separate frame ``end_timestamp`` + those columns that must cover every
end_timestamp exactly. Which columns a model needs: ``exo_columns(config)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fin_ia_models.world_model.config import JEPAConfig
from fin_ia_models.world_model.exo_signals import EXO_COLUMNS, SCALE_COLUMNS


@dataclass(frozen=True)
class SequenceArrays:
    end_timestamp: np.ndarray  # (l,) int64
    tokens: np.ndarray  # (l,) int64
    latents: np.ndarray | None  # (l, n_latent) float32
    exo: np.ndarray | None  # (l, len(exo_columns(config))) float32


def exo_columns(config: JEPAConfig) -> tuple[str, ...]:
    """The exo columns a model reads, in order: the clock's z-scores first (the mixers take the first
    ``mixer.exo.n_signals``), then the scale inputs when ``config.scale_inputs`` (the embedding takes them all)."""
    if config.scale_inputs:
        return EXO_COLUMNS + SCALE_COLUMNS
    return EXO_COLUMNS if config.mixer.exo.enabled else ()


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
    cols = list(exo_columns(config))
    if cols:
        if all(c in frame.columns for c in cols):
            exo_arr = frame[cols].to_numpy(np.float32)
        elif exo is not None:
            missing = [c for c in cols if c not in exo.columns]
            if missing:
                raise ValueError(f"the exo frame lacks column(s) {missing}; this model reads {cols}")
            merged = pd.DataFrame({"end_timestamp": ts}).merge(exo[["end_timestamp", *cols]], on="end_timestamp",
                                                               how="left")
            if merged[cols].isna().any().any():
                raise ValueError("exo frame does not cover every end_timestamp of the token sequence")
            exo_arr = merged[cols].to_numpy(np.float32)
        else:
            why = "scale_inputs is on" if config.scale_inputs else "the exo-clock is enabled"
            raise ValueError(f"{why}: this model reads exo columns {cols}; give them in the frame or as an exo frame")
    return SequenceArrays(ts, tokens, latents, exo_arr)
