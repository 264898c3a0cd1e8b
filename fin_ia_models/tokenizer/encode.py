"""Candle frame → token sequence (the ``token_sequences`` asset): one row per patch, in time order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from fin_ia_models.tokenizer.features import make_patches
from fin_ia_models.tokenizer.model import TokenizerModel


def encode_candles(model: TokenizerModel, frame: pd.DataFrame, stride: int | None = None,
                   batch_size: int = 4096) -> pd.DataFrame:
    """Columns ``end_timestamp`` (int64 ms, open time of the patch's last candle), ``token`` (int64) and the
    continuous encoder output ``latent_0..latent_{D-1}`` (float32).

    ``stride`` defaults to ``patch_len`` (non-overlapping patches). Patches spanning a gap are absent (see
    ``features``); ``attrs`` (symbol, timeframe) are carried over.
    """
    c = model.config
    patches = make_patches(frame, c.patch_len, stride, c.volume_window, c.return_scale)
    device = next(model.parameters()).device
    tokens, latents = [], []
    for start in range(0, len(patches), batch_size):
        x = torch.as_tensor(patches.values[start:start + batch_size], device=device)  # (b, L, C)
        idx, latent = model.encode(x)
        tokens.append(idx.cpu().numpy().astype(np.int64))
        latents.append(latent.float().cpu().numpy().astype(np.float32))
    token = np.concatenate(tokens) if tokens else np.zeros(0, np.int64)
    latent = np.concatenate(latents) if latents else np.zeros((0, c.latent_dim), np.float32)
    out = pd.DataFrame({"end_timestamp": patches.end_timestamp.astype(np.int64), "token": token})
    for j in range(c.latent_dim):
        out[f"latent_{j}"] = latent[:, j]
    out.attrs = dict(frame.attrs)
    return out
