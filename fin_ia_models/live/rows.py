"""How one token's multiverse futures and the candles become an agent row: shared by the batch and streaming paths.

Per token t (end time t, one token = T = patch_len candles):
- ``mv_summary`` (K = 4): over the N sampled futures, the mean, standard deviation (ddof 1) and 5 % quantile of the
  first future token's return, and the mean realized volatility of its candles: the ``ret_{L}c_mean``,
  ``ret_{L}c_std``, ``ret_{L}c_q05`` and ``rv_{L}c_mean`` columns of a ``multiverse_trajectories`` frame (L = T).
- ``mv_futures`` (N, H): per-token-step log returns of every future (the frame's ``future_step_ret``).
- ``past_returns`` (R): r_t, r_{t−T}, …, r_{t−(R−1)T} with r_s = log(close(s) / close(s − T)) from the candles that
  opened at s and s − T; 0 where either candle is missing (a gap: no return is invented across it).
- label ``next_return`` = r_{t+T} and ``tradable`` = the next token exists exactly one step later (no gap between):
  the gap policy of ``agents.data``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fin_ia_models.agents.data import AgentData
from fin_ia_models.multiverse.trajectories import Trajectories, futures_from_frame

SUMMARY_NAMES = ("mean", "std", "q05", "rv")


def summary_columns(patch_len: int) -> list[str]:
    """The trajectories-frame columns that make ``mv_summary`` (same order as ``SUMMARY_NAMES``)."""
    return [f"ret_{patch_len}c_mean", f"ret_{patch_len}c_std", f"ret_{patch_len}c_q05", f"rv_{patch_len}c_mean"]


def summary_of(ret: np.ndarray, rv: np.ndarray) -> np.ndarray:
    """(B, N) first-token returns and realized vols → (B, 4) ``mv_summary``, as ``trajectories.summary_frame``."""
    n = ret.shape[1]
    std = ret.std(axis=1, ddof=1) if n > 1 else np.zeros(len(ret))
    return np.stack([ret.mean(axis=1), std, np.quantile(ret, 0.05, axis=1), rv.mean(axis=1)], axis=1)


def first_step_summary(traj: Trajectories) -> np.ndarray:
    """(B, 4) float64 ``mv_summary`` of every origin, from the decoded candle paths."""
    return summary_of(*traj.horizon_targets(traj.patch_len))


def analytic_futures(scale: np.ndarray, patch_len: int, return_scale: float) -> tuple[np.ndarray, np.ndarray,
                                                                                       np.ndarray]:
    """Per-token quantities of futures straight from their predicted RevIN statistics ``scale`` (B, N, H, 2) =
    (log σ, μ/σ), without the tokenizer decoder: (step returns (B, N, H), first-token returns (B, N), first-token
    realized vols (B, N)), float64.

    ``multiverse.decode`` makes candle returns r_i = (μ + σ·ẑ_i) / return_scale with a shape ẑ centred exactly and
    scaled to unit variance, so a token's return is patch_len·μ / return_scale and its realized volatility
    sqrt(patch_len·(μ² + σ²)) / return_scale whatever the shape (equal to the decoded sums up to float64 rounding).
    The one exception is a decoded shape flatter than ``SHAPE_STD_FLOOR``, which decode leaves unscaled (its vol
    is then lower); the engine's ``decode="full"`` runs the decoder for that exactness (~8× slower at demo size)."""
    sigma = np.exp(scale[..., 0].astype(np.float64))
    mu = scale[..., 1].astype(np.float64) * sigma
    steps = patch_len * mu / return_scale
    rv = np.sqrt(patch_len * (mu[..., 0] ** 2 + sigma[..., 0] ** 2)) / return_scale
    return steps, steps[..., 0], rv


def token_returns(candles: pd.DataFrame, ends: np.ndarray, token_ms: int, n_past: int) -> np.ndarray:
    """(len(ends), n_past + 1) float64: column 0 is r_{t+T} (the label), columns 1.. are r_t, r_{t−T}, … (0 where a
    candle is missing; the label is NaN then)."""
    ts = candles["timestamp"].to_numpy(np.int64)
    close = candles["close"].to_numpy(np.float64)

    def close_at(stamps: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(ts, stamps), len(ts) - 1)
        return np.where(ts[pos] == stamps, close[pos], np.nan)

    out = np.empty((len(ends), n_past + 1))
    for j in range(n_past + 1):  # j = 0: label t → t+T; j ≥ 1: the return ending at t − (j−1)T
        end = ends - (j - 1) * token_ms
        with np.errstate(invalid="ignore"):
            out[:, j] = np.log(close_at(end) / close_at(end - token_ms))
    out[:, 1:] = np.nan_to_num(out[:, 1:], nan=0.0)
    return out


def agent_data_from_trajectories(trajectories: pd.DataFrame, embeddings: pd.DataFrame, candles: pd.DataFrame,
                                 patch_len: int, n_past: int, token_ms: int, symbol: str = "") -> AgentData:
    """``AgentData`` of the tokens of a ``multiverse_trajectories`` frame (the batch path; see the module docstring)."""
    ends = trajectories["end_timestamp"].to_numpy(np.int64)
    emb = embeddings.set_index("end_timestamp").reindex(ends)
    if emb.isna().any().any():
        raise ValueError(f"{symbol or 'symbol'}: jepa_embeddings lack tokens of the trajectories frame")
    cols = sorted((c for c in emb.columns if c.startswith("emb_")), key=lambda c: int(c[4:]))
    summary = trajectories[summary_columns(patch_len)].to_numpy(np.float64)
    _, futures = futures_from_frame(trajectories)
    returns = token_returns(candles, ends, token_ms, n_past)
    tradable = np.r_[np.diff(ends) == token_ms, False]  # the next token exactly one step later; the last: unknown
    return AgentData(end_timestamp=ends, embedding=emb[cols].to_numpy(np.float32), mv_summary=summary,
                     past_returns=returns[:, 1:], next_return=np.where(tradable, returns[:, 0], np.nan),
                     tradable=tradable, mv_futures=futures, mv_summary_names=SUMMARY_NAMES, symbol=symbol)
