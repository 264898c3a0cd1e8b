"""Per-token context embeddings of a token sequence with a trained Fin-JEPA (the ``jepa_embeddings`` artifact).

The context encoder is causal (causal conv + forward SSM scan), so row t depends only on tokens (and exo signals)
at end_timestamp <= t. The whole sequence runs in one parallel pass (the SSD scan is linear in its length).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from fin_ia_models.world_model.jepa import FinJEPA
from fin_ia_models.world_model.sequences import sequence_arrays


def embed_sequence(model: FinJEPA, frame: pd.DataFrame, exo: pd.DataFrame | None = None) -> pd.DataFrame:
    """frame: token-sequence frame → ``end_timestamp`` + ``emb_0..emb_{d-1}`` (float32), one row per token."""
    arrays = sequence_arrays(frame, model.config, exo)
    d = model.config.mixer.d_model
    if len(arrays.tokens) == 0:
        empty = {f"emb_{i}": np.empty(0, np.float32) for i in range(d)}
        return pd.DataFrame({"end_timestamp": np.empty(0, np.int64), **empty})
    enc = model.context_encoder
    device = next(enc.parameters()).device
    was_training = enc.training
    enc.eval()
    with torch.no_grad():
        tokens = torch.from_numpy(arrays.tokens.copy())[None].to(device)  # (1, l)
        lat = None if arrays.latents is None else torch.from_numpy(arrays.latents.copy())[None].to(device)
        ex = None if arrays.exo is None else torch.from_numpy(arrays.exo.copy())[None].to(device)
        emb = enc(tokens, lat, ex)[0].float().cpu().numpy()  # (l, d)
    enc.train(was_training)
    out = pd.DataFrame(emb, columns=[f"emb_{i}" for i in range(d)])
    out.insert(0, "end_timestamp", arrays.end_timestamp)
    return out
