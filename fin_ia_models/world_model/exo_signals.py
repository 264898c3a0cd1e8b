"""Exogenous signals for the exo-clock, computed causally from candles: per token, the trailing z-scores of log
realized volatility and log volume of the candles in its patch.

A token with ``end_timestamp`` T summarises the ``patch_len`` candles whose OPEN times are
T - (patch_len-1)·tf, …, T (T is the open time of the patch's last candle; the token exists once that candle has
closed). For that patch::

    rv_T  = sqrt( Σ_i r_i² ),  r_i = log(close_i / close_{i-1})     (realized volatility of the patch)
    vol_T = Σ_i volume_i
    exo_vol_T    = (log rv_T  - mean) / std   over the trailing ``window`` tokens ending at T (inclusive)
    exo_volume_T = (log(vol_T + 1) - mean) / std   likewise

Only candles with open time ≤ T enter row T, so changing later candles leaves earlier rows unchanged. Rows with
fewer than ``min_periods`` past tokens, a missing candle in the patch, or zero trailing std are 0 (neutral clock).

The result is a frame ``end_timestamp, exo_vol, exo_volume`` (float32). Pass it to ``train_jepa(..., exo=...)`` /
``embed_sequence(..., exo=...)`` keyed by symbol, or add those two columns to the token-sequence frame itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fin_ia_models.data.schema import timeframe_ms

EXO_COLUMNS: tuple[str, ...] = ("exo_vol", "exo_volume")


def exo_from_candles(
    candles: pd.DataFrame,
    end_timestamps: np.ndarray,
    patch_len: int,
    timeframe: str,
    window: int = 720,
    min_periods: int = 24,
) -> pd.DataFrame:
    """Per-token exo z-scores (see module docstring). ``candles`` is a candle frame; ``end_timestamps`` int64 ms."""
    if patch_len < 1 or window < 2 or not 2 <= min_periods <= window:
        raise ValueError(f"bad exo params: patch_len={patch_len}, window={window}, min_periods={min_periods}")
    tf = timeframe_ms(timeframe)
    ts = candles["timestamp"].to_numpy(np.int64)
    close = candles["close"].to_numpy(np.float64)
    volume = candles["volume"].to_numpy(np.float64)
    logret = np.full(len(close), np.nan)
    gap_free = np.r_[False, np.diff(ts) == tf]  # a return across a gap is not a one-candle return
    logret[1:] = np.log(close[1:] / close[:-1])
    logret[~gap_free] = np.nan

    ends = np.asarray(end_timestamps, dtype=np.int64)
    pos_end = np.searchsorted(ts, ends, side="left")  # index of the candle opening at T
    found = (pos_end < len(ts)) & (ts[np.minimum(pos_end, len(ts) - 1)] == ends)
    pos_start = pos_end - (patch_len - 1)
    complete = found & (pos_start >= 0)
    complete[complete] &= (ts[pos_end[complete]] - ts[pos_start[complete]]) == (patch_len - 1) * tf

    # prefix sums give each patch's Σr² and Σvolume in O(1); a NaN return (first candle, gap) marks the patch bad
    r2 = np.nan_to_num(logret**2)
    bad = np.isnan(logret).astype(np.int64)
    cs_r2, cs_vol, cs_bad = (np.r_[0.0, np.cumsum(v)] for v in (r2, volume, bad))
    rv = np.full(len(ends), np.nan)
    vol = np.full(len(ends), np.nan)
    i0, i1 = pos_start[complete], pos_end[complete] + 1
    ok = (cs_bad[i1] - cs_bad[i0]) == 0
    rv_c = np.sqrt(cs_r2[i1] - cs_r2[i0])
    vol_c = cs_vol[i1] - cs_vol[i0]
    rv[np.flatnonzero(complete)[ok]] = rv_c[ok]
    vol[np.flatnonzero(complete)] = vol_c

    out = {"end_timestamp": ends}
    for name, raw in (("exo_vol", np.log(np.maximum(rv, 1e-12))), ("exo_volume", np.log1p(vol))):
        s = pd.Series(raw)
        mean = s.rolling(window, min_periods=min_periods).mean()  # trailing, includes row T: causal
        std = s.rolling(window, min_periods=min_periods).std()
        z = ((s - mean) / std.where(std > 0)).to_numpy()
        out[name] = np.nan_to_num(z, nan=0.0).astype(np.float32)
    return pd.DataFrame(out)
