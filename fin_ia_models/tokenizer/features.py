"""Candle frame → per-candle scale-free features → patches of ``patch_len`` candles, each labelled by its END time.

Features per candle t (all scale-free, so BTC and ETH share one vocabulary):

- ``ret_open``, ``ret_high``, ``ret_low``, ``ret_close``: log(price_t / close_{t-1}) × ``return_scale``;
- ``rel_volume``: log1p(volume_t / mean(volume over the ``volume_window`` candles ending at t)). Volume relative to a
  trailing mean rather than the log volume change: it is bounded below (a zero-volume maintenance candle gives 0, not
  -inf) and does not explode on one quiet candle.

Causality: every feature of candle t uses candles <= t only, and a patch ending at t uses features of its own
``patch_len`` candles only, so appending or changing candles after t cannot change a patch ending at or before t.

Gaps: a candle is *valid* only when it and its ``volume_window`` predecessors sit on the timeframe grid without a
hole (so the previous close and the trailing mean are the real ones). A patch is kept only when all its candles are
valid, so no patch spans a gap and no feature straddles one; patches touching a gap (or the first candles of a
series) are DROPPED, not filled.

Alignment: patch ends sit on an absolute grid — candle index k = timestamp / timeframe is a patch end when
(k + 1) % stride == 0 — so the patch boundaries do not move when the series start or end changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fin_ia_models.data.schema import CANDLE_COLUMNS, timeframe_ms

FEATURE_NAMES: tuple[str, ...] = ("ret_open", "ret_high", "ret_low", "ret_close", "rel_volume")


@dataclass(frozen=True)
class Patches:
    """Patches cut from one or more candle frames."""

    values: np.ndarray  # (M, patch_len, n_features) float32 features
    end_timestamp: np.ndarray  # (M,) int64 open time (ms) of the last candle of each patch
    series: np.ndarray  # (M,) int64 index of the frame each patch comes from

    def __len__(self) -> int:
        return len(self.end_timestamp)

    @staticmethod
    def concat(parts: list["Patches"]) -> "Patches":
        """Stack patches of several frames (keeping each one's series index)."""
        if not parts:
            raise ValueError("cannot concatenate an empty list of patches")
        return Patches(
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.end_timestamp for p in parts]),
            np.concatenate([p.series for p in parts]),
        )


def step_ms(frame: pd.DataFrame) -> int:
    """Grid step of ``frame``: from ``attrs['timeframe']`` when present, else the smallest timestamp difference."""
    timeframe = frame.attrs.get("timeframe")
    if timeframe:
        return timeframe_ms(timeframe)
    diffs = np.diff(frame["timestamp"].to_numpy(np.int64))
    if len(diffs) == 0 or diffs.min() <= 0:
        raise ValueError("cannot infer the timeframe: frame has no attrs['timeframe'] and < 2 increasing timestamps")
    return int(diffs.min())


def _check_frame(frame: pd.DataFrame) -> None:
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"candle frame lacks columns {missing}; expected {list(CANDLE_COLUMNS)}")
    ts = frame["timestamp"].to_numpy(np.int64)
    if len(ts) > 1 and np.any(np.diff(ts) <= 0):
        raise ValueError("candle timestamps must be strictly increasing (sorted, unique)")
    prices = frame[["open", "high", "low", "close"]].to_numpy(np.float64)
    if np.any(~np.isfinite(prices)) or np.any(prices <= 0):
        raise ValueError("candle prices must be finite and > 0")
    volume = frame["volume"].to_numpy(np.float64)
    if np.any(~np.isfinite(volume)) or np.any(volume < 0):
        raise ValueError("candle volume must be finite and >= 0")


def candle_features(
    frame: pd.DataFrame, volume_window: int = 24, return_scale: float = 100.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-candle features ``(N, 5)`` float64 and a validity mask ``(N,)`` (see the module docstring)."""
    _check_frame(frame)
    n = len(frame)
    step = step_ms(frame)
    ts = frame["timestamp"].to_numpy(np.int64)
    o, h, l, c, v = (frame[col].to_numpy(np.float64) for col in CANDLE_COLUMNS[1:])
    features = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float64)
    if n == 0:
        return features, np.zeros(0, dtype=bool)
    prev_close = np.concatenate([[np.nan], c[:-1]])
    for j, price in enumerate((o, h, l, c)):
        features[:, j] = np.log(price / prev_close) * return_scale
    # trailing mean over the window ending at t (cumsum difference; positions < window are invalid anyway)
    csum = np.concatenate([[0.0], np.cumsum(v)])
    start = np.maximum(np.arange(n) + 1 - volume_window, 0)
    trailing_mean = (csum[1:] - csum[start]) / (np.arange(n) + 1 - start)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(trailing_mean > 0, v / trailing_mean, 0.0)  # all-zero window (maintenance): no signal
    features[:, 4] = np.log1p(ratio)
    # run_length[t] = number of contiguous on-grid candles ending at t (1 right after a gap)
    contiguous = np.concatenate([[False], np.diff(ts) == step])
    run_start = np.where(~contiguous, np.arange(n), 0)
    run_length = np.arange(n) - np.maximum.accumulate(run_start) + 1
    # needs the previous close (1 predecessor) and a full volume window (volume_window - 1 predecessors)
    valid = run_length >= max(2, volume_window)
    features[~valid] = 0.0
    return features, valid


def make_patches(
    frame: pd.DataFrame,
    patch_len: int = 16,
    stride: int | None = None,
    volume_window: int = 24,
    return_scale: float = 100.0,
    series: int = 0,
) -> Patches:
    """Cut ``frame`` into patches of ``patch_len`` candles ending on the absolute ``stride`` grid.

    ``stride`` defaults to ``patch_len`` (non-overlapping patches: the token sequence); ``stride=1`` gives a patch
    ending at every candle (training data, dense evaluation). Patches with any invalid candle (gap, warm-up) are
    dropped.
    """
    stride = patch_len if stride is None else stride
    if stride < 1 or patch_len < 1:
        raise ValueError(f"patch_len and stride must be >= 1, got patch_len={patch_len}, stride={stride}")
    features, valid = candle_features(frame, volume_window, return_scale)
    n = len(features)
    empty = Patches(np.zeros((0, patch_len, features.shape[1]), np.float32), np.zeros(0, np.int64),
                    np.zeros(0, np.int64))
    if n < patch_len:
        return empty
    ts = frame["timestamp"].to_numpy(np.int64)
    step = step_ms(frame)
    # valid_run[t]: consecutive valid candles ending at t; a valid candle is on-grid right after its predecessor
    # (valid needs run_length >= 2), so a run of valid candles is also gap-free
    position = np.arange(n)
    last_invalid = np.maximum.accumulate(np.where(~valid, position, -1))
    valid_run = np.where(valid, position - last_invalid, 0)
    ends = np.flatnonzero((valid_run >= patch_len) & (((ts // step) + 1) % stride == 0))
    if len(ends) == 0:
        return empty
    index = ends[:, None] + np.arange(-patch_len + 1, 1)[None, :]  # (M, patch_len) candle rows of each patch
    values = features[index].astype(np.float32)  # (M, patch_len, n_features)
    return Patches(values, ts[ends].astype(np.int64), np.full(len(ends), series, dtype=np.int64))
