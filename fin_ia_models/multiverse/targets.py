"""Training targets of the multiverse (forward-looking; built here only, apart from the causal context).

For the token at row i (end time T) the target is the next ``horizon`` tokens, each as Strate I's continuous latent
plus its patch's scale statistics (log σ, μ/σ; see ``context.py``)::

    y_i = [ (latent_{i+k}, s_{i+k}, m_{i+k})  for k = 1..horizon ]        (horizon, D + 2)

A target exists only when rows i+1..i+horizon are the next tokens on the grid (end times T + k·token_ms): a missing
token (a gap in the candles) voids the target instead of silently joining patches that are not adjacent.
Predicting (s, m) is what gives every sampled future its own volatility and drift; carrying the context's RevIN
statistics into the decoder would give all N futures the same volatility.
"""

from __future__ import annotations

import numpy as np

from fin_ia_models.multiverse.context import SymbolContext


def future_targets(context: SymbolContext, horizon: int, token_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(targets (T, horizon, D + 2) float32, valid (T,) bool); invalid rows hold NaN."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if token_ms < 1:
        raise ValueError(f"token_ms must be >= 1, got {token_ms}")
    ts = context.end_timestamp
    n = len(ts)
    per_token = np.concatenate([context.latent.astype(np.float64), context.scale], axis=1)  # (T, D + 2)
    targets = np.full((n, horizon, per_token.shape[1]), np.nan)
    valid = np.zeros(n, bool)
    if n > horizon:
        rows = np.arange(n - horizon)
        later = rows[:, None] + np.arange(1, horizon + 1)[None]  # (n - H, H) rows i+1..i+H
        on_grid = (ts[later] - ts[rows, None]) == token_ms * np.arange(1, horizon + 1)[None]  # (n - H, H)
        ok = on_grid.all(axis=1)
        targets[rows[ok]] = per_token[later[ok]]
        valid[rows[ok]] = True
    return targets.astype(np.float32), valid


def future_targets_ref(context: SymbolContext, horizon: int, token_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain loop over rows and steps (reference for ``future_targets``)."""
    ts = context.end_timestamp
    n, d = len(ts), context.latent.shape[1] + 2
    targets = np.full((n, horizon, d), np.nan, np.float32)
    valid = np.zeros(n, bool)
    for i in range(n):
        steps = []
        for k in range(1, horizon + 1):
            if i + k >= n or ts[i + k] != ts[i] + k * token_ms:
                break
            steps.append(np.r_[context.latent[i + k], context.scale[i + k]])
        if len(steps) == horizon:
            targets[i] = np.stack(steps)
            valid[i] = True
    return targets, valid
