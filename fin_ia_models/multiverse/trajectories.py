"""``Trajectories``: what ``MultiverseModel.sample`` returns, and its compact stored form (the
``multiverse_trajectories`` frame: per token, summaries plus the sampled ids and per-token-step returns).

Dims: B origins (tokens), N futures, H future tokens, L = patch_len candles per token, D latent width.
Targets of a future are computed exactly like the realized ones (``evaluation.forecast_targets.path_targets``):
the n-candle return is the sum of the first n candle log returns, the realized volatility sqrt of their squares' sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fin_ia_models.evaluation.forecast_targets import path_targets

QUANTILES = (0.05, 0.5, 0.95)  # stored summary quantiles (5 % / 50 % / 95 %)


@dataclass(frozen=True)
class Trajectories:
    """N sampled futures of H tokens for each of B origins."""

    end_timestamp: np.ndarray  # (B,) int64 origin tokens
    token_ids: np.ndarray  # (B, N, H) int64 Strate I token of each future step
    latents: np.ndarray  # (B, N, H, D) float32 continuous latent of each future step
    scale: np.ndarray  # (B, N, H, 2) float32 predicted (log σ, μ/σ) of each future patch's close returns
    candle_returns: np.ndarray  # (B, N, H·L) float64 per-candle log returns
    patch_len: int

    @property
    def shape(self) -> tuple[int, int, int]:
        """(B, N, H)."""
        return self.token_ids.shape  # type: ignore[return-value]

    def paths(self, n_candles: int) -> np.ndarray:
        """(B, N, n) the first ``n_candles`` per-candle log returns of every future."""
        if not 1 <= n_candles <= self.candle_returns.shape[2]:
            raise ValueError(f"n_candles must be in 1..{self.candle_returns.shape[2]}, got {n_candles}")
        return self.candle_returns[:, :, :n_candles]

    def horizon_targets(self, n_candles: int) -> tuple[np.ndarray, np.ndarray]:
        """(return, realized vol), each (B, N), over the first ``n_candles`` candles of every future."""
        return path_targets(self.paths(n_candles))

    def step_returns(self) -> np.ndarray:
        """(B, N, H) log return of each future token step (sum of its patch_len candle returns)."""
        b, n, _ = self.candle_returns.shape
        return self.candle_returns.reshape(b, n, -1, self.patch_len).sum(axis=3)


def summary_frame(traj: Trajectories, horizons: tuple[int, ...]) -> pd.DataFrame:
    """One row per origin: ``end_timestamp``; for each horizon h (candles) mean, std and 5/50/95 % quantiles over
    the N futures of the h-candle return (``ret_{h}c_*``) and realized vol (``rv_{h}c_*``); ``n_futures`` and
    ``horizon`` (tokens); ``future_token`` and ``future_step_ret``: the N×H token ids and per-token-step log returns,
    flattened future-major (row-major (N, H)), for the planner."""
    b, n, h = traj.shape
    out: dict[str, np.ndarray] = {"end_timestamp": traj.end_timestamp.astype(np.int64)}
    for horizon in horizons:
        for name, values in zip(("ret", "rv"), traj.horizon_targets(horizon)):  # (B, N) each
            q = np.quantile(values, QUANTILES, axis=1)  # (3, B)
            out[f"{name}_{horizon}c_mean"] = values.mean(axis=1)
            out[f"{name}_{horizon}c_std"] = values.std(axis=1, ddof=1) if n > 1 else np.zeros(b)
            for level, row in zip(QUANTILES, q):
                out[f"{name}_{horizon}c_q{round(100 * level):02d}"] = row
    out["n_futures"] = np.full(b, n, np.int32)
    out["horizon"] = np.full(b, h, np.int32)
    frame = pd.DataFrame(out)
    frame["future_token"] = list(traj.token_ids.reshape(b, n * h).astype(np.int32))
    frame["future_step_ret"] = list(traj.step_returns().reshape(b, n * h).astype(np.float32))
    return frame


def futures_from_frame(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The stored futures of a trajectories frame: (token ids (T, N, H) int64, step log returns (T, N, H) float32)."""
    if frame.empty:
        raise ValueError("the trajectories frame has no rows")
    n, h = int(frame["n_futures"].iloc[0]), int(frame["horizon"].iloc[0])
    if (frame["n_futures"] != n).any() or (frame["horizon"] != h).any():
        raise ValueError("rows of one trajectories frame must share n_futures and horizon")
    ids = np.stack(frame["future_token"].to_numpy()).reshape(len(frame), n, h).astype(np.int64)
    returns = np.stack(frame["future_step_ret"].to_numpy()).reshape(len(frame), n, h).astype(np.float32)
    return ids, returns
