"""What the multiverse knows at token t (causal): the Fin-JEPA context embedding, Strate I's continuous latent, and
the scale of the recent candles.

Inputs are the stage contracts, never a model's internals: a token-sequence frame (``end_timestamp``, ``token``,
``latent_0..``), a ``jepa_embeddings`` frame (``end_timestamp``, ``emb_0..``) with the same rows, and the symbol's
candles. Per token t (row i) the context features are::

    emb_t (E) | latent_t (D) | s_t, m_t, mean(s over the last w rows) for w in scale_windows

where (s, m) are the RevIN statistics (Kim et al. 2022) of the token's own patch for the tokenizer's close-return
channel: s = log σ, σ = sqrt(var + eps) and m = μ / σ, μ and var the mean and population variance of the patch's
close returns in the tokenizer's units (log returns × ``return_scale``). s is the log of a volatility of returns and m
a standardized drift: both unit-free (no price level enters). Rows whose trailing windows are incomplete (the first
``max(scale_windows) - 1`` tokens) are not usable: they get no futures. Every feature of row i uses rows <= i only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fin_ia_models.multiverse.config import MultiverseConfig
from fin_ia_models.tokenizer.config import TokenizerConfig
from fin_ia_models.tokenizer.features import FEATURE_NAMES, make_patches

RET_CLOSE = FEATURE_NAMES.index("ret_close")  # the tokenizer channel whose RevIN statistics carry the scale


def patch_scale_stats(values: np.ndarray, eps: float) -> np.ndarray:
    """(n, 2) ``[log σ, μ/σ]`` of the close-return channel of patches ``values`` (n, L, C), as RevIN computes them."""
    r = np.asarray(values, np.float64)[:, :, RET_CLOSE]  # (n, L)
    mu = r.mean(axis=1)
    sigma = np.sqrt(r.var(axis=1) + eps)
    return np.stack([np.log(sigma), mu / sigma], axis=1)


def token_scale(candles: pd.DataFrame, end_timestamps: np.ndarray, tokenizer: TokenizerConfig) -> np.ndarray:
    """(n, 2) scale statistics of the patch of each token (``end_timestamps``), from the tokenizer's own features.

    A token with no complete patch in ``candles`` is an error: the candles must be the ones the tokens were cut from.
    """
    c = tokenizer
    patches = make_patches(candles, c.patch_len, c.patch_len, c.volume_window, c.return_scale)
    ends = np.asarray(end_timestamps, np.int64)
    pos = np.searchsorted(patches.end_timestamp, ends)
    found = np.zeros(len(ends), bool)
    if len(patches):
        found = (pos < len(patches)) & (patches.end_timestamp[np.minimum(pos, len(patches) - 1)] == ends)
    if len(ends) and not found.all():
        first = int(ends[~found][0])
        raise ValueError(f"{int((~found).sum())} tokens have no complete {c.patch_len}-candle patch in the candles "
                         f"given (first ending at {first} ms): pass the candles the token sequence was made from")
    return patch_scale_stats(patches.values[pos], c.revin_eps)


def _columns(frame: pd.DataFrame, prefix: str, expected: int, what: str) -> list[str]:
    cols = sorted((c for c in frame.columns if c.startswith(prefix)), key=lambda c: int(c[len(prefix):]))
    if len(cols) != expected:
        raise ValueError(f"{what} has {len(cols)} {prefix}* columns, the multiverse was built for {expected}")
    return cols


def _finite(name: str, values: np.ndarray, stamps: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(f"{name} holds {int(bad.sum())} NaN/inf values, the first at end_timestamp {int(stamps[row])}")


@dataclass(frozen=True)
class SymbolContext:
    """One symbol's per-token context (causal) and the per-token quantities future targets are made of."""

    end_timestamp: np.ndarray  # (T,) int64, strictly increasing
    features: np.ndarray  # (T, F) float32: emb | latent | scale features (NaN in rows that are not usable)
    usable: np.ndarray  # (T,) bool: the trailing scale windows are complete
    latent: np.ndarray  # (T, D) float32 Strate I latent of each token
    scale: np.ndarray  # (T, 2) float64 (log σ, μ/σ) of each token's own patch

    def __len__(self) -> int:
        return len(self.end_timestamp)


def build_context(tokens: pd.DataFrame, embeddings: pd.DataFrame, candles: pd.DataFrame,
                  config: MultiverseConfig) -> SymbolContext:
    """Align a token sequence, its JEPA embeddings and its candles into per-token context features."""
    for frame, what in ((tokens, "token sequence"), (embeddings, "jepa_embeddings frame")):
        if "end_timestamp" not in frame.columns:
            raise ValueError(f"{what} lacks the end_timestamp column; has {list(frame.columns)[:8]}")
    ts = tokens["end_timestamp"].to_numpy(np.int64)
    if len(ts) > 1 and (np.diff(ts) <= 0).any():
        raise ValueError("token end_timestamp must be strictly increasing")
    emb_ts = embeddings["end_timestamp"].to_numpy(np.int64)
    if len(emb_ts) != len(ts) or (emb_ts != ts).any():
        where = next((i for i, (a, b) in enumerate(zip(ts, emb_ts)) if a != b), min(len(ts), len(emb_ts)))
        raise ValueError(f"jepa_embeddings ({len(emb_ts)} rows) do not cover the token sequence ({len(ts)} rows) row "
                         f"for row (first difference at row {where}): embed the same token sequence")
    if len(ts) < config.context_tokens:
        raise ValueError(f"context too short: {len(ts)} tokens, the multiverse needs at least "
                         f"{config.context_tokens} (its longest scale window)")
    latent = tokens[_columns(tokens, "latent_", config.latent_dim, "token sequence")].to_numpy(np.float32)
    emb = embeddings[_columns(embeddings, "emb_", config.emb_dim, "jepa_embeddings frame")].to_numpy(np.float32)
    _finite("latent_* columns", latent, ts)
    _finite("emb_* columns", emb, ts)
    scale = token_scale(candles, ts, config.tokenizer)
    _finite("patch scale (candles)", scale, ts)
    log_std = pd.Series(scale[:, 0])
    trailing = [log_std.rolling(w, min_periods=w).mean().to_numpy() for w in config.scale_windows]  # rows <= i
    features = np.concatenate([emb, latent, scale, np.stack(trailing, axis=1)], axis=1).astype(np.float32)
    usable = np.arange(len(ts)) >= config.context_tokens - 1
    return SymbolContext(ts, features, usable, latent, scale)


def embedding_width(embeddings: pd.DataFrame) -> int:
    """Number of ``emb_*`` columns of a ``jepa_embeddings`` frame (the context embedding's width)."""
    width = sum(1 for c in embeddings.columns if c.startswith("emb_"))
    if width == 0:
        raise ValueError(f"not a jepa_embeddings frame: no emb_* column in {list(embeddings.columns)[:8]}")
    return width
