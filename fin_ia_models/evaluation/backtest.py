"""Vectorised backtest engine: positions decided on closed candles earn the next candle's return, net of costs.

Dims: T candles on a regular timeframe grid, S symbols (each symbol is its own book; ``BacktestResult.portfolio_net``
splits capital equally across them).

Timing (no look-ahead). Candle t (open time ``timestamps[t]``) has closed when the position p_t is decided, so p_t may
use closes up to close_t. The trade is filled at close_t and the position earns the simple return of the next candle::

    gross_t = p_t · (close_{t+1} / close_t - 1)
    cost_t  = (fee_bps + slippage_bps) · 1e-4 · |p_t - p_{t-1}|      (p_{-1} = 0)
    net_t   = gross_t - cost_t

Gap policy (a missing candle is never bridged as a return). Candle t is *tradable* when it and candle t + 1 both
exist. On a non-tradable candle the effective position is forced to 0: a position is closed at the last candle before
a gap (paying its cost at close_t), stays flat through the gap (no return: the price move across the gap is neither
earned nor lost) and is reopened, with its cost, on the first tradable candle after it. The last candle of the data is
non-tradable for the same reason, so the book is liquidated (and charged) at the end. This uses knowledge that the next
candle will be missing (data availability, never prices) and charges the round trip: a conservative choice. The
effective positions are returned so the metrics (exposure, turnover, trades) see what was really held.

Conventions from López de Prado, "Advances in Financial Machine Learning" (2018), ch. 11-14 (backtesting pitfalls:
look-ahead, transaction costs, survivorship). Every ``run_backtest`` result is checked against ``run_backtest_ref``
(a plain per-candle loop) in the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fin_ia_models.data.schema import timeframe_ms
from fin_ia_models.utils.config_io import ConfigDict


@dataclass(frozen=True)
class CostConfig(ConfigDict):
    """Trading costs per unit of traded notional (|Δposition| = 1 is a full-size trade)."""

    fee_bps: float = 10.0  # Binance spot taker fee at the base tier (0.10 %)
    slippage_bps: float = 5.0  # half-spread plus impact of a market order on a liquid pair, conservative for 1 h bars

    def __post_init__(self) -> None:
        if not np.isfinite(self.fee_bps) or self.fee_bps < 0:
            raise ValueError(f"fee_bps must be finite and >= 0, got {self.fee_bps}")
        if not np.isfinite(self.slippage_bps) or self.slippage_bps < 0:
            raise ValueError(f"slippage_bps must be finite and >= 0, got {self.slippage_bps}")

    @property
    def rate(self) -> float:
        """Cost as a fraction of traded notional."""
        return (self.fee_bps + self.slippage_bps) * 1e-4


@dataclass(frozen=True)
class BacktestResult:
    """Per-candle, per-symbol arrays of one backtest (all (T, S))."""

    timestamps: np.ndarray  # (T,) int64 ms, candle open times
    symbols: tuple[str, ...]  # (S,)
    positions: np.ndarray  # effective positions held from close_t to close_{t+1} (0 where not tradable)
    gross: np.ndarray  # position × next-candle simple return
    costs: np.ndarray  # fees + slippage charged at t
    net: np.ndarray  # gross - costs
    tradable: np.ndarray  # bool: candle t and t + 1 both exist

    def portfolio_net(self) -> np.ndarray:
        """(T,) equal capital per symbol, rebalanced every candle."""
        return self.net.mean(axis=1)

    def trades(self) -> np.ndarray:
        """(T, S) absolute position change |p_t - p_{t-1}| (the traded notional)."""
        return np.abs(np.diff(self.positions, axis=0, prepend=0.0))

    def n_trades(self) -> np.ndarray:
        """(S,) candles on which the position changed."""
        return (self.trades() > 0).sum(axis=0)


def _as_2d(name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"{name} must be (T,) or (T, S), got shape {values.shape}")
    return values


def check_positions(positions: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
    """Positions must be finite and in [-1, 1]; the error names the first bad value, its row and column."""
    positions = np.asarray(positions, np.float64)
    bad = ~np.isfinite(positions) | (np.abs(positions) > 1.0)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        stamp = f" (timestamp {int(timestamps[where[0]])})" if timestamps is not None else ""
        raise ValueError(f"positions must be finite and in [-1, 1]: {int(bad.sum())} bad values, first "
                         f"{positions[where]} at index {where}{stamp}")
    return positions


def _validate(timestamps, closes, positions, valid, timeframe):
    timestamps = np.asarray(timestamps, np.int64)
    closes = _as_2d("closes", np.asarray(closes, np.float64))
    positions = _as_2d("positions", positions)
    valid = np.isfinite(closes) if valid is None else _as_2d("valid", np.asarray(valid, bool))
    if timestamps.ndim != 1 or len(timestamps) < 2:
        raise ValueError(f"timestamps must be 1-D with at least 2 candles, got shape {timestamps.shape}")
    for name, arr in (("closes", closes), ("positions", positions), ("valid", valid)):
        if arr.shape[0] != len(timestamps):
            raise ValueError(f"misaligned inputs: {name} has {arr.shape[0]} rows but timestamps has {len(timestamps)}")
    if not closes.shape == positions.shape == valid.shape:
        raise ValueError(f"misaligned inputs: closes {closes.shape}, positions {positions.shape}, valid {valid.shape}")
    step = np.diff(timestamps)
    tf = timeframe_ms(timeframe)
    if (step != tf).any():
        i = int(np.argmax(step != tf))
        raise ValueError(f"timestamps must be a regular {timeframe} grid (missing candles are marked by valid=False, "
                         f"see candle_grid): step {int(step[i])} ms between {int(timestamps[i])} and "
                         f"{int(timestamps[i + 1])}")
    ok_close = np.isfinite(closes) & (closes > 0)
    if (valid & ~ok_close).any():
        where = tuple(int(i) for i in np.argwhere(valid & ~ok_close)[0])
        raise ValueError(f"a valid candle needs a finite close > 0, got {closes[where]} at index {where}")
    return timestamps, closes, check_positions(positions, timestamps), valid


def run_backtest(timestamps: np.ndarray, closes: np.ndarray, positions: np.ndarray, valid: np.ndarray | None = None,
                 costs: CostConfig | None = None, symbols: tuple[str, ...] | None = None,
                 timeframe: str = "1h") -> BacktestResult:
    """Backtest positions (T, S) decided at each candle's close on closes (T, S); ``valid`` (T, S) marks existing
    candles (default: finite closes). 1-D inputs are one symbol."""
    timestamps, closes, positions, valid = _validate(timestamps, closes, positions, valid, timeframe)
    rate = (costs or CostConfig()).rate
    tradable = np.zeros_like(valid)
    tradable[:-1] = valid[:-1] & valid[1:]  # (T, S); the last candle has no next candle
    held = np.where(tradable, positions, 0.0)  # (T, S) effective positions
    safe = np.where(valid, closes, 1.0)  # placeholder price where the candle is missing (never used: not tradable)
    simple = np.zeros_like(closes)
    simple[:-1] = safe[1:] / safe[:-1] - 1.0  # (T, S) close_t → close_{t+1}
    gross = np.where(tradable, held * simple, 0.0)
    cost = rate * np.abs(np.diff(held, axis=0, prepend=0.0))
    names = tuple(symbols) if symbols is not None else tuple(f"s{j}" for j in range(closes.shape[1]))
    if len(names) != closes.shape[1]:
        raise ValueError(f"{len(names)} symbols for {closes.shape[1]} columns")
    return BacktestResult(timestamps, names, held, gross, cost, gross - cost, tradable)


def run_backtest_ref(timestamps, closes, positions, valid=None, costs: CostConfig | None = None,
                     timeframe: str = "1h") -> np.ndarray:
    """Plain loop over symbols and candles (reference for ``run_backtest``): returns net (T, S)."""
    timestamps, closes, positions, valid = _validate(timestamps, closes, positions, valid, timeframe)
    rate = (costs or CostConfig()).rate
    n_t, n_s = closes.shape
    net = np.zeros((n_t, n_s))
    for s in range(n_s):
        previous = 0.0
        for t in range(n_t):
            can_trade = t + 1 < n_t and valid[t, s] and valid[t + 1, s]
            held = positions[t, s] if can_trade else 0.0
            earned = held * (closes[t + 1, s] / closes[t, s] - 1.0) if can_trade else 0.0
            net[t, s] = earned - rate * abs(held - previous)
            previous = held
    return net


def candle_grid(frames: Mapping[str, pd.DataFrame], timeframe: str = "1h"
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """Align candle frames on one regular grid: ``timestamps (T,), closes (T, S) (NaN where missing), valid (T, S),
    symbols``. The grid spans the earliest to the latest candle of all symbols."""
    if not frames:
        raise ValueError("no candle frames given")
    tf = timeframe_ms(timeframe)
    stamps = {name: frame["timestamp"].to_numpy(np.int64) for name, frame in frames.items()}
    for name, ts in stamps.items():
        if len(ts) == 0 or (np.diff(ts) <= 0).any():
            raise ValueError(f"{name}: candle timestamps must be non-empty and strictly increasing")
    start = min(int(ts[0]) for ts in stamps.values())
    end = max(int(ts[-1]) for ts in stamps.values())
    grid = np.arange(start, end + tf, tf, dtype=np.int64)  # (T,)
    closes = np.full((len(grid), len(frames)), np.nan)
    for j, (name, frame) in enumerate(frames.items()):
        offset = stamps[name] - start
        if (offset % tf).any():
            raise ValueError(f"{name}: timestamps are off the {timeframe} grid anchored at {start}")
        closes[offset // tf, j] = frame["close"].to_numpy(np.float64)
    return grid, closes, np.isfinite(closes), tuple(frames)


def hold_positions(decision_ts: np.ndarray, positions: np.ndarray, candle_ts: np.ndarray) -> np.ndarray:
    """Forward-fill decisions onto the candle grid: (T,) or (T, S).

    A decision stamped T (a token's end_timestamp: its last candle has closed) applies from candle T on, so it earns
    T → T + 1 first; before the first decision the position is 0. No decision reaches back in time."""
    decision_ts = np.asarray(decision_ts, np.int64)
    candle_ts = np.asarray(candle_ts, np.int64)
    positions = check_positions(positions)
    if decision_ts.ndim != 1 or positions.shape[0] != len(decision_ts):
        raise ValueError(f"misaligned decisions: {len(decision_ts)} timestamps for positions of shape "
                         f"{positions.shape}")
    if len(decision_ts) == 0:
        raise ValueError("no decisions to hold")
    if (np.diff(decision_ts) <= 0).any():
        raise ValueError("decision timestamps must be strictly increasing")
    at = np.searchsorted(candle_ts, decision_ts)
    on_grid = (at < len(candle_ts)) & (candle_ts[np.minimum(at, len(candle_ts) - 1)] == decision_ts)
    if not on_grid.all():
        raise ValueError(f"decision timestamp {int(decision_ts[~on_grid][0])} is not a candle open time")
    last = np.searchsorted(decision_ts, candle_ts, side="right") - 1  # (T,) latest decision with stamp <= candle
    held = positions[np.maximum(last, 0)]
    held[last < 0] = 0.0
    return held
