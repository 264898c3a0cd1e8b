"""The plain-array contract between the upstream stages (JEPA embeddings, multiverse) and the agents.

``AgentData`` holds one symbol's aligned, causal arrays, one row per token step t. A token is one patch of 16 hourly
candles, identified by ``end_timestamp`` (the open time of its last candle); row t exists once that candle has
closed. Dims: T token steps, D embedding width, K multiverse summary width, N sampled futures, H future steps, R past
returns.

Causality: every feature of row t (embedding, mv_summary, mv_futures, past_returns) uses only tokens ≤ t.
``next_return[t]`` is the realized log return from t to t+1: a label, used for the reward only, never observed.

Gap policy (the same as the evaluation backtest engine, ``fin_ia_models.evaluation.backtest``): ``tradable[t]`` is
False when t → t+1 spans a gap in the candles. Such a step earns no return (its ``next_return`` may be NaN and is
ignored) and the effective position over it is forced to 0: a position is closed at t (its cost charged), stays flat
across the gap, and reopening after it pays its cost again. A jump across a gap is never booked as profit or loss, and
the agent observes the flat position it really holds after the gap. This uses the knowledge that the next candles are
missing (data availability, never prices) and charges the round trip: the conservative choice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from fin_ia_models.config import TimeSplit


def _frozen_array(name: str, value, dtype, ndim: int) -> np.ndarray:
    array = np.array(value, dtype=dtype, copy=True)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    array.setflags(write=False)  # a frozen dataclass should not be mutable through its arrays
    return array


def _check_finite(name: str, array: np.ndarray) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(f"{name} has {int(bad.sum())} non-finite value(s), the first in row {row}")


@dataclass(frozen=True)
class AgentRow:
    """What an agent may see at one decision step t (row t of ``AgentData``, no label)."""

    end_timestamp: int  # open time (ms UTC) of the token's last candle
    embedding: np.ndarray  # (D,) JEPA context embedding at t
    mv_summary: np.ndarray  # (K,) multiverse summary for the next step(s), sampled at t
    past_returns: np.ndarray  # (R,) realized per-step log returns up to and including t
    mv_futures: np.ndarray | None = None  # (N, H) sampled futures of the next H per-step log returns

    def features(self) -> np.ndarray:
        """(D + K + R,) float32: the raw observation features, in the order the normaliser expects."""
        return np.concatenate([self.embedding, self.mv_summary, self.past_returns]).astype(np.float32, copy=False)


@dataclass(frozen=True)
class AgentData:
    """One symbol's aligned arrays (see the module docstring). Arrays are copied, cast and made read-only."""

    end_timestamp: np.ndarray  # (T,) int64, strictly increasing
    embedding: np.ndarray  # (T, D) float32
    mv_summary: np.ndarray  # (T, K) float32: e.g. mean, std, 5 % quantile of the next return, realized vol
    past_returns: np.ndarray  # (T, R) float32
    next_return: np.ndarray  # (T,) float64 label: log return t → t+1 (NaN allowed where not tradable)
    tradable: np.ndarray  # (T,) bool: False where t → t+1 spans a candle gap (no return earned)
    mv_futures: np.ndarray | None = None  # (T, N, H) float32, for the planner
    mv_summary_names: tuple[str, ...] = ()  # K names; () → "mv_0", "mv_1", ...
    symbol: str = ""  # e.g. "BTC/USDT", for messages and lineage

    def __post_init__(self) -> None:
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen dataclass)
        stamps = np.asarray(self.end_timestamp)
        if not np.issubdtype(stamps.dtype, np.integer):
            raise ValueError(f"end_timestamp must be integer ms, got dtype {stamps.dtype}")
        put("end_timestamp", _frozen_array("end_timestamp", stamps, np.int64, 1))
        n = len(self.end_timestamp)
        if n < 2:
            raise ValueError(f"AgentData needs at least 2 rows, got {n}")
        if (np.diff(self.end_timestamp) <= 0).any():
            i = int(np.argmax(np.diff(self.end_timestamp) <= 0))
            raise ValueError(f"end_timestamp must be strictly increasing: row {i + 1} ({self.end_timestamp[i + 1]}) "
                             f"<= row {i} ({self.end_timestamp[i]})")
        for name in ("embedding", "mv_summary", "past_returns"):
            put(name, _frozen_array(name, getattr(self, name), np.float32, 2))
            array = getattr(self, name)
            if array.shape[0] != n or array.shape[1] < 1:
                raise ValueError(f"{name} must have shape (T={n}, >=1), got {array.shape}")
            _check_finite(name, array)
        tradable = np.asarray(self.tradable)
        if tradable.dtype != np.bool_:
            raise ValueError(f"tradable must be a bool array, got dtype {tradable.dtype}")
        put("tradable", _frozen_array("tradable", tradable, np.bool_, 1))
        put("next_return", _frozen_array("next_return", self.next_return, np.float64, 1))
        for name in ("tradable", "next_return"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} must have T = {n} rows, got {len(getattr(self, name))}")
        _check_finite("next_return (tradable rows)", np.where(self.tradable, self.next_return, 0.0))
        if self.mv_futures is not None:
            put("mv_futures", _frozen_array("mv_futures", self.mv_futures, np.float32, 3))
            if self.mv_futures.shape[0] != n or min(self.mv_futures.shape[1:]) < 1:
                raise ValueError(f"mv_futures must have shape (T={n}, N>=1, H>=1), got {self.mv_futures.shape}")
            _check_finite("mv_futures", self.mv_futures)
        names = tuple(self.mv_summary_names) or tuple(f"mv_{i}" for i in range(self.mv_summary.shape[1]))
        if len(names) != self.mv_summary.shape[1]:
            raise ValueError(f"mv_summary_names has {len(names)} names for K = {self.mv_summary.shape[1]} columns")
        put("mv_summary_names", names)

    # -- shape facts ------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.end_timestamp)

    @property
    def dims(self) -> tuple[int, int, int]:
        """(D, K, R): the observation widths an agent trained on this data expects."""
        return self.embedding.shape[1], self.mv_summary.shape[1], self.past_returns.shape[1]

    def features(self) -> np.ndarray:
        """(T, D + K + R) float32 raw observation features (see ``AgentRow.features``)."""
        return np.concatenate([self.embedding, self.mv_summary, self.past_returns], axis=1)

    def earned_return(self) -> np.ndarray:
        """(T,) float64: ``next_return`` where tradable, 0 across gaps (the gap policy above)."""
        return np.where(self.tradable, self.next_return, 0.0)

    def effective_positions(self, positions: np.ndarray) -> np.ndarray:
        """(T,) the positions really held: ``positions`` where tradable, 0 across gaps (the gap policy above)."""
        return np.where(self.tradable, positions, 0.0)

    def arrays(self) -> list[np.ndarray]:
        """Every array of the window (for content digests and checkpoint fingerprints)."""
        arrays = [self.end_timestamp, self.embedding, self.mv_summary, self.past_returns, self.next_return,
                  self.tradable]
        return arrays + ([] if self.mv_futures is None else [self.mv_futures])

    def row(self, t: int) -> AgentRow:
        """Row t without its label (what an agent may see at step t)."""
        if not 0 <= t < len(self):
            raise IndexError(f"row {t} outside 0..{len(self) - 1}")
        futures = None if self.mv_futures is None else self.mv_futures[t]
        return AgentRow(int(self.end_timestamp[t]), self.embedding[t], self.mv_summary[t], self.past_returns[t],
                        futures)

    def take(self, rows: slice | np.ndarray) -> AgentData:
        """The rows ``rows`` (a slice or index/bool array) as a new AgentData."""
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("end_timestamp", "embedding", "mv_summary", "past_returns", "next_return", "tradable",
                     "mv_futures"):
            if arrays[name] is not None:
                arrays[name] = arrays[name][rows]
        return AgentData(**arrays)


def time_window(data: AgentData, start_ms: int, end_ms: int) -> AgentData:
    """Rows with ``start_ms <= end_timestamp < end_ms``; a ValueError naming the window if fewer than 2 remain."""
    mask = (data.end_timestamp >= start_ms) & (data.end_timestamp < end_ms)
    if mask.sum() < 2:
        raise ValueError(f"{data.symbol or 'data'}: only {int(mask.sum())} row(s) in [{start_ms}, {end_ms}) ms; "
                         "a window needs at least 2")
    return data.take(mask)


def split_by_time(data: AgentData, split: TimeSplit) -> dict[str, AgentData]:
    """``{"train", "val", "test"}`` windows of ``data`` under ``split`` (val and test start after the embargo).

    The label of a window's last row looks one token ahead (into the embargo that follows). That is only safe when
    one token step is no longer than the embargo, so a longer step is refused.
    """
    step_ms = int(np.median(np.diff(data.end_timestamp)))
    if step_ms > split.embargo_hours * 3_600_000:
        raise ValueError(f"token step {step_ms / 3.6e6:g} h exceeds the embargo of {split.embargo_hours} h: labels of "
                         "a window's last rows would reach into the next window")
    return {name: time_window(data, *split.range_ms(name)) for name in ("train", "val", "test")}
