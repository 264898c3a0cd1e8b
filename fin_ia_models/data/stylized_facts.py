"""Stylized facts of asset returns, measured on a candle frame.

The facts are those of Cont (2001), "Empirical properties of asset returns: stylized facts and statistical issues",
Quantitative Finance 1(2): heavy tails (large excess kurtosis of returns), absence of linear autocorrelation of
returns, volatility clustering (slowly decaying positive autocorrelation of |r|) and volume–volatility correlation.
They are used to check that the synthetic market looks like real crypto candles.

Gaps are handled honestly: a return is only computed between two candles that are adjacent on the timeframe grid,
and autocorrelations only pair returns that are exactly ``lag`` grid steps apart. Nothing is forward-filled.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from fin_ia_models.data.schema import DAY_MS, timeframe_ms


def log_returns(close: np.ndarray | pd.Series) -> np.ndarray:
    """``log(close[t] / close[t-1])`` for consecutive entries; length ``len(close) - 1``.

    Assumes the entries are consecutive candles; for frames with gaps use :func:`grid_log_returns`.
    """
    values = np.asarray(close, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"close must be one-dimensional, got shape {values.shape}")
    if np.any(~np.isfinite(values)) or np.any(values <= 0):
        raise ValueError("close must be finite and positive to take log returns")
    return np.diff(np.log(values))


def grid_log_returns(frame: pd.DataFrame, timeframe: str) -> np.ndarray:
    """Log returns laid on the full timeframe grid: entry ``i`` is the return into grid slot ``i + 1``.

    A slot whose candle or whose predecessor is missing holds NaN, so lagged pairs keep their true distance in time.
    Length: (last - first) / timeframe grid steps.
    """
    step = timeframe_ms(timeframe)
    ts = frame["timestamp"].to_numpy(dtype=np.int64)
    if len(ts) < 2:
        raise ValueError(f"need at least 2 candles to take returns, got {len(ts)}")
    offsets = ts - ts[0]
    if np.any(offsets % step) or np.any(np.diff(ts) <= 0):
        raise ValueError(f"timestamps must be sorted, unique and on the {timeframe} grid")
    slots = offsets // step
    log_close = np.full(int(slots[-1]) + 1, np.nan)  # (n_slots,)
    log_close[slots] = np.log(frame["close"].to_numpy(dtype=np.float64))
    return np.diff(log_close)  # NaN wherever either side is missing


def excess_kurtosis(r: np.ndarray) -> float:
    """Sample excess kurtosis ``m4 / m2**2 - 3`` of the finite entries of ``r`` (0 for a Gaussian)."""
    x = np.asarray(r, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) < 4:
        raise ValueError(f"need at least 4 finite values for kurtosis, got {len(x)}")
    centered = x - x.mean()
    m2 = np.mean(centered**2)
    if m2 == 0:
        raise ValueError("kurtosis is undefined for a constant series")
    return float(np.mean(centered**4) / m2**2 - 3.0)


def autocorr(x: np.ndarray, lag: int) -> float:
    """Sample autocorrelation of ``x`` at ``lag``, over the pairs ``(x[t], x[t+lag])`` where both are finite.

    Uses the usual ACF estimator: mean and variance over all finite entries, the lagged covariance averaged over the
    valid pairs. NaN entries (gaps) drop out of every pair they belong to.
    """
    if lag < 1:
        raise ValueError(f"lag must be >= 1, got {lag}")
    values = np.asarray(x, dtype=np.float64)
    if len(values) <= lag:
        raise ValueError(f"series of length {len(values)} is too short for lag {lag}")
    finite = np.isfinite(values)
    mean = values[finite].mean()
    var = np.mean((values[finite] - mean) ** 2)
    if var == 0:
        raise ValueError("autocorrelation is undefined for a constant series")
    head, tail = values[:-lag] - mean, values[lag:] - mean
    pairs = np.isfinite(head) & np.isfinite(tail)
    if not pairs.any():
        raise ValueError(f"no pair of finite values {lag} steps apart")
    return float(np.mean(head[pairs] * tail[pairs]) / var)


def stylized_facts(
    frame: pd.DataFrame, lags: Iterable[int] = range(1, 25), volume_trend_days: float = 30.0
) -> dict[str, float | list[float]]:
    """Measure the stylized facts of a candle frame (its ``attrs['timeframe']`` must be set).

    Returns a dict with
    - ``n_returns``: number of grid-adjacent returns used,
    - ``excess_kurtosis``: of log returns,
    - ``abs_acf``: autocorrelation of |r| at each lag (list), with ``abs_acf_mean`` / ``abs_acf_min`` over lags,
    - ``ret_acf``: autocorrelation of r at each lag (list), with ``ret_acf_max_abs`` = max |acf of r| over lags,
    - ``vol_volume_corr``: Pearson correlation of |r| with log volume of the candle the return ends in (candles
      with zero volume, e.g. beside exchange maintenance, are left out since their log is undefined),
    - ``vol_volume_corr_detrended``: the same with log volume minus its trailing ``volume_trend_days`` mean, so
      years-long growth of participation (Binance 2017: volume ×20) does not mask the candle-level coupling.
    """
    timeframe = frame.attrs.get("timeframe")
    if timeframe is None:
        raise ValueError("frame.attrs['timeframe'] is not set: use schema.with_meta on the frame first")
    lags = list(lags)
    r = grid_log_returns(frame, timeframe)  # (n_slots - 1,)
    abs_r = np.abs(r)
    abs_acf = [autocorr(abs_r, lag) for lag in lags]
    ret_acf = [autocorr(r, lag) for lag in lags]

    # volume of the candle each return ends in, on the same grid
    step = timeframe_ms(timeframe)
    ts = frame["timestamp"].to_numpy(dtype=np.int64)
    slots = (ts - ts[0]) // step
    volume = np.full(len(r) + 1, np.nan)
    volume[slots] = frame["volume"].to_numpy(dtype=np.float64)
    volume = volume[1:]
    usable = np.isfinite(r) & np.isfinite(volume) & (volume > 0)
    if usable.sum() < 3:
        raise ValueError(f"only {int(usable.sum())} returns with positive volume: too few for a correlation")
    log_volume = np.log(np.where(volume > 0, volume, np.nan))  # NaN for gaps and zero-volume candles
    vol_volume = float(np.corrcoef(abs_r[usable], log_volume[usable])[0, 1])
    window = max(2, round(volume_trend_days * DAY_MS / step))  # in grid slots
    trend = pd.Series(log_volume).rolling(window, min_periods=window // 2).mean().to_numpy()  # trailing, skips NaN
    detrended = log_volume - trend
    usable_detrended = usable & np.isfinite(detrended)
    if usable_detrended.sum() < 3:
        raise ValueError(f"series shorter than the {volume_trend_days}-day volume trend window: cannot detrend")
    vol_volume_detrended = float(np.corrcoef(abs_r[usable_detrended], detrended[usable_detrended])[0, 1])

    return {
        "n_returns": int(np.isfinite(r).sum()),
        "excess_kurtosis": excess_kurtosis(r),
        "abs_acf": abs_acf,
        "abs_acf_mean": float(np.mean(abs_acf)),
        "abs_acf_min": float(np.min(abs_acf)),
        "ret_acf": ret_acf,
        "ret_acf_max_abs": float(np.max(np.abs(ret_acf))),
        "vol_volume_corr": vol_volume,
        "vol_volume_corr_detrended": vol_volume_detrended,
    }
