"""Forecast targets (forward-looking, evaluation only) and the causal return series the baselines condition on.

A forecast origin is a token's ``end_timestamp`` T: the open time of its last candle, which has closed when the token
exists. With r_k = log(close_k / close_{k-1}) the hourly log close-to-close return of candle k, the targets over the
next H candles are (the same horizon convention as ``world_model/probes.py::probe_targets``)::

    path(T) = (r_{T+1}, ..., r_{T+H})                  (H,)  realized hourly path (for the energy score, fan charts)
    ret(T)  = Σ_{i=1..H} r_{T+i} = log(close_{T+H} / close_T)   H-step log return
    rv(T)   = sqrt( Σ_{i=1..H} r_{T+i}² )                       H-step realized volatility (Andersen et al. 2003)

A missing candle inside the horizon makes the target NaN (a return across a gap is not an hourly return). These are
the ONLY forward-looking functions of the evaluation package; ``log_returns`` and ``origin_positions`` are causal: the
value at candle k uses candles <= k only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fin_ia_models.data.schema import timeframe_ms


def _timeframe(candles: pd.DataFrame, timeframe: str | None) -> int:
    timeframe = timeframe or candles.attrs.get("timeframe")
    if timeframe is None:
        raise ValueError("timeframe is unknown: pass timeframe= or use a candle frame with attrs['timeframe']")
    return timeframe_ms(timeframe)


def _checked(candles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    ts = candles["timestamp"].to_numpy(np.int64)
    close = candles["close"].to_numpy(np.float64)
    if len(ts) < 2:
        raise ValueError(f"need at least 2 candles, got {len(ts)}")
    if (np.diff(ts) <= 0).any():
        bad = int(np.argmax(np.diff(ts) <= 0))
        raise ValueError(f"candle timestamps must be strictly increasing: {ts[bad]} then {ts[bad + 1]}")
    if not (np.isfinite(close) & (close > 0)).all():
        bad = int(np.argmax(~(np.isfinite(close) & (close > 0))))
        raise ValueError(f"close must be finite and > 0, got {close[bad]} at timestamp {ts[bad]}")
    return ts, close


def log_returns(candles: pd.DataFrame, timeframe: str | None = None) -> np.ndarray:
    """(T,) hourly log return of each candle vs the previous one; NaN for the first candle and after a gap (causal)."""
    tf = _timeframe(candles, timeframe)
    ts, close = _checked(candles)
    out = np.full(len(ts), np.nan)
    contiguous = np.diff(ts) == tf  # (T-1,) candle k follows candle k-1 without a gap
    out[1:] = np.where(contiguous, np.diff(np.log(close)), np.nan)
    return out


def origin_positions(candles: pd.DataFrame, end_timestamps: np.ndarray) -> np.ndarray:
    """(n,) row of each origin's candle; an origin that is not a candle is an error (a unit mistake, s vs ms)."""
    ts = candles["timestamp"].to_numpy(np.int64)
    ends = np.asarray(end_timestamps, np.int64)
    pos = np.searchsorted(ts, ends)
    found = (pos < len(ts)) & (ts[np.minimum(pos, len(ts) - 1)] == ends)
    if not found.all():
        missing = ends[~found]
        raise ValueError(f"{len(missing)} end_timestamps are not candle open times, first {int(missing[0])}")
    return pos


def realized_paths(candles: pd.DataFrame, end_timestamps: np.ndarray, horizon_candles: int,
                   timeframe: str | None = None) -> np.ndarray:
    """(n, H) realized log returns of the H candles after each origin; a row is all NaN if the horizon is incomplete
    (past the last candle) or contains a gap."""
    if horizon_candles < 1:
        raise ValueError(f"horizon_candles must be >= 1, got {horizon_candles}")
    r = log_returns(candles, timeframe)  # (T,)
    pos = origin_positions(candles, end_timestamps)  # (n,)
    idx = pos[:, None] + 1 + np.arange(horizon_candles)[None]  # (n, H) candles T+1 .. T+H
    inside = idx[:, -1] < len(r)
    paths = np.full(idx.shape, np.nan)
    paths[inside] = r[idx[inside]]
    paths[~np.isfinite(paths).all(axis=1)] = np.nan  # one gap voids the whole horizon
    return paths


def forecast_targets(candles: pd.DataFrame, end_timestamps: np.ndarray, horizon_candles: int,
                     timeframe: str | None = None) -> pd.DataFrame:
    """``end_timestamp, ret, rv``: H-step log return and realized volatility after each origin (NaN where the next
    ``horizon_candles`` candles are incomplete or contain a gap)."""
    paths = realized_paths(candles, end_timestamps, horizon_candles, timeframe)  # (n, H)
    return pd.DataFrame({
        "end_timestamp": np.asarray(end_timestamps, np.int64),
        "ret": paths.sum(axis=1),  # NaN rows stay NaN
        "rv": np.sqrt((paths**2).sum(axis=1)),
    })


def path_targets(paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """H-step ``ret`` and ``rv`` of hourly log-return paths (..., H): the same reduction for forecasts and outcomes."""
    paths = np.asarray(paths, np.float64)
    return paths.sum(axis=-1), np.sqrt((paths**2).sum(axis=-1))
