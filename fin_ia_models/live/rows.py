"""How one token's multiverse futures and the candles become an agent row in the streaming path, by the contract of
``agents.assemble`` (what the agents were trained and backtested on; the batch path calls it directly):

- ``mv_summary`` (4 per horizon): for each horizon h of ``multiverse_trajectories`` (``eval_horizons``, ascending),
  over the N sampled futures, the mean, standard deviation (ddof 1) and 5 % quantile of the h-candle return and the
  mean realized volatility: the ``ret_{h}c_mean``, ``ret_{h}c_std``, ``ret_{h}c_q05``, ``rv_{h}c_mean`` columns.
  A horizon of exactly one token has an analytic form (``analytic_futures``); any other needs the decoded candles
  (``multiverse.decode.CodeShapeTable``: the decoded shape of every code, computed once, looked up per future token).
- ``mv_futures`` (N, H): per-token-step log returns of every future (the frame's ``future_step_ret``).
- ``past_returns`` (R): the last R realized token-step log returns, oldest first; a step whose previous token is not
  exactly one token earlier (a gap) is 0 — no return is invented across missing candles.
"""

from __future__ import annotations

import math

import numpy as np

from fin_ia_models.multiverse.trajectories import Trajectories

SUMMARY_NAMES = ("mean", "std", "q05", "rv")


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
    is then lower); for any other horizon the engine looks the decoded shapes up (``decode="table"``) or runs the
    decoder (``decode="full"``, the reference)."""
    sigma = np.exp(scale[..., 0].astype(np.float64))
    mu = scale[..., 1].astype(np.float64) * sigma
    steps = patch_len * mu / return_scale
    rv = np.sqrt(patch_len * (mu[..., 0] ** 2 + sigma[..., 0] ** 2)) / return_scale
    return steps, steps[..., 0], rv


def summary_horizons(multiverse_config) -> tuple[int, ...]:
    """The horizons (candles) of ``mv_summary``: those ``multiverse_trajectories`` stores (``eval_horizons``), in the
    order ``agents.assemble.summary_columns`` reads them (ascending)."""
    return tuple(sorted(int(h) for h in multiverse_config.eval_horizons))


def needs_decoder(horizons: tuple[int, ...], patch_len: int) -> bool:
    """A horizon other than one token needs the decoded candle paths (the analytic token sums cannot split a token)."""
    return tuple(horizons) != (patch_len,)


def horizons_summary(traj: Trajectories, horizons: tuple[int, ...]) -> np.ndarray:
    """(B, 4·len(horizons)) float64 ``mv_summary`` from decoded futures: per horizon mean, std, 5 % quantile of the
    return and mean realized vol — the ``ret_{h}c_mean/std/q05, rv_{h}c_mean`` columns of ``summary_frame``."""
    return np.concatenate([summary_of(*traj.horizon_targets(h)) for h in horizons], axis=1)


def past_token_returns(tokens: list[tuple[int, float]], token_ms: int, n_past: int) -> np.ndarray:
    """(n_past,) float64 realized token-step log returns up to the last token, oldest first, from the (end time,
    close) of the last ≤ n_past + 1 tokens: 0 for a step whose previous token is not exactly one token earlier and
    before the first token — ``agents.assemble``'s ``past_returns``, computed incrementally."""
    out = np.zeros(n_past)
    steps = [math.log(c / c0) if t - t0 == token_ms else 0.0 for (t0, c0), (t, c) in zip(tokens[:-1], tokens[1:])]
    steps = steps[-n_past:]
    if steps:
        out[n_past - len(steps):] = steps
    return out
