"""Exogenous signals for the exo-clock, computed causally from candles: per token, the trailing z-scores of log
realized volatility and log volume of the candles in its patch.

A token with ``end_timestamp`` T summarises the ``patch_len`` candles whose OPEN times are
T - (patch_len-1)·tf, …, T (T is the open time of the patch's last candle; the token exists once that candle has
closed). For that patch::

    rv_T  = sqrt( Σ_i r_i² ),  r_i = log(close_i / close_{i-1})     (realized volatility of the patch)
    vol_T = Σ_i volume_i
    exo_vol_T    = (log rv_T  - mean) / std   over the trailing ``window`` tokens ending at T (inclusive)
    exo_volume_T = (log vol_T - mean) / std   likewise (a patch with zero volume is left out of the statistics)

and the two SCALE inputs (``JEPAConfig.scale_inputs``): the statistics per-patch RevIN divides out of the tokens,
made unit-free so one model serves every symbol::

    scale_ret_T    = log(100 · std_i r_i)                          (log σ of the patch's returns, σ in %)
    scale_volume_T = log( mean_i volume_i / mean of volume over the trailing ``window`` candles ending at T )

Every column is invariant to the unit of volume (×1000 leaves it unchanged): z-scores of a log and a ratio of two
volumes. Only candles with open time ≤ T enter row T, so changing later candles leaves earlier rows unchanged. Rows
with fewer than ``min_periods`` past tokens, a missing candle in the patch, or zero trailing std are 0 (neutral clock);
the scale inputs are 0 where the patch is incomplete.

The result is a frame ``end_timestamp`` + ``EXO_COLUMNS`` + ``SCALE_COLUMNS`` (float32). Pass it to
``train_jepa(..., exo=...)`` / ``embed_sequence(..., exo=...)`` keyed by symbol, or add those columns to the
token-sequence frame itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fin_ia_models.data.schema import timeframe_ms

EXO_COLUMNS: tuple[str, ...] = ("exo_vol", "exo_volume")
SCALE_COLUMNS: tuple[str, ...] = ("scale_ret", "scale_volume")


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
    sd = np.full(len(ends), np.nan)
    cs_r = np.r_[0.0, np.cumsum(np.nan_to_num(logret))]
    i0, i1 = pos_start[complete], pos_end[complete] + 1
    ok = (cs_bad[i1] - cs_bad[i0]) == 0
    rv_c = np.sqrt(cs_r2[i1] - cs_r2[i0])
    vol_c = cs_vol[i1] - cs_vol[i0]
    rv[np.flatnonzero(complete)[ok]] = rv_c[ok]
    vol[np.flatnonzero(complete)] = vol_c
    mean_r = (cs_r[i1] - cs_r[i0]) / patch_len
    sd_c = np.sqrt(np.maximum((cs_r2[i1] - cs_r2[i0]) / patch_len - mean_r**2, 0.0))  # population σ, as RevIN
    sd[np.flatnonzero(complete)[ok]] = sd_c[ok]
    # trailing mean volume per candle over `window` candles ending at each candle (inclusive: causal)
    trail = pd.Series(volume).rolling(window, min_periods=min_periods).mean().to_numpy()
    rel = np.full(len(ends), np.nan)
    cpos = pos_end[complete]
    rel[np.flatnonzero(complete)] = (vol_c / patch_len) / trail[cpos]

    out = {"end_timestamp": ends}
    with np.errstate(divide="ignore", invalid="ignore"):
        log_vol = np.where(vol > 0, np.log(vol), np.nan)  # log, not log1p: z-scores then ignore the volume unit
        log_rel = np.where(rel > 0, np.log(rel), np.nan)
        log_sd = np.where(sd > 0, np.log(100.0 * sd), np.nan)
    for name, raw in (("exo_vol", np.log(np.maximum(rv, 1e-12))), ("exo_volume", log_vol)):
        s = pd.Series(raw)
        mean = s.rolling(window, min_periods=min_periods).mean()  # trailing, includes row T: causal
        std = s.rolling(window, min_periods=min_periods).std()
        z = ((s - mean) / std.where(std > 0)).to_numpy()
        out[name] = np.nan_to_num(z, nan=0.0).astype(np.float32)
    out["scale_ret"] = np.nan_to_num(log_sd, nan=0.0).astype(np.float32)
    out["scale_volume"] = np.nan_to_num(log_rel, nan=0.0).astype(np.float32)
    return pd.DataFrame(out)
