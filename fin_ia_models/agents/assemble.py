"""``AgentData`` from the stage contracts: a ``jepa_embeddings`` frame, a ``multiverse_trajectories`` frame and the
symbol's candles (the pipeline's stored frames; no model internals).

Rows: the tokens that have futures (every row of the trajectories frame), keyed by ``end_timestamp`` (the open time
of the token's last candle). Per row t:

- ``embedding``: ``emb_*`` of the same token (Fin-JEPA context: tokens ≤ t);
- ``mv_summary``: for each stored horizon h (candles), the futures' mean, std and 5 % quantile of the h-candle return
  and their mean realized vol (``ret_{h}c_mean``, ``ret_{h}c_std``, ``ret_{h}c_q05``, ``rv_{h}c_mean``), sampled at t;
- ``mv_futures``: the N × H per-token-step log returns sampled at t (the planner's "world model rollouts");
- ``past_returns``: the last ``n_past`` realized token-step log returns up to and including t, oldest first, where
  the step into token u is log(close_u / close_{u−1}) with close_u the close of u's last candle; a step that spans a
  gap (the previous token is not exactly one token earlier) or reaches before the first token is 0 — no return is
  ever bridged across missing candles;
- label ``next_return[t]`` = log(close_{t+1} / close_t) when token t + 1 starts right after t (``tradable``), else
  not tradable (NaN): the gap policy of ``data.py``.

Causality: every feature of row t uses candles with open time ≤ end_timestamp_t only (tested by perturbing the
future); only the label looks at t + 1.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from fin_ia_models.agents.data import AgentData
from fin_ia_models.data.schema import timeframe_ms
from fin_ia_models.multiverse.trajectories import futures_from_frame

N_PAST = 4  # realized token steps observed (4 × 16 h ≈ 2.7 days)
SUMMARY_STATS = ("ret_{h}c_mean", "ret_{h}c_std", "ret_{h}c_q05", "rv_{h}c_mean")


def summary_columns(trajectories: pd.DataFrame) -> list[str]:
    """The ``mv_summary`` columns of a trajectories frame, for every horizon it stores, in horizon order."""
    horizons = sorted({int(m.group(1)) for c in trajectories.columns if (m := re.fullmatch(r"ret_(\d+)c_mean", c))})
    if not horizons:
        raise ValueError(f"the trajectories frame has no ret_<h>c_mean column: columns {list(trajectories.columns)[:8]}")
    return [stat.format(h=h) for h in horizons for stat in SUMMARY_STATS]


def exact_positions(stamps: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions, found) of each ``wanted`` timestamp in the sorted ``stamps``: found only where equal."""
    at = np.searchsorted(stamps, wanted)
    return at, (at < len(stamps)) & (stamps[np.minimum(at, len(stamps) - 1)] == wanted)


def token_closes(candles: pd.DataFrame, end_timestamp: np.ndarray, symbol: str) -> np.ndarray:
    """(T,) close of the candle opening at each ``end_timestamp`` (the token's last candle); an error names the first
    token whose candle is missing."""
    at, found = exact_positions(candles["timestamp"].to_numpy(np.int64), end_timestamp)
    if not found.all():
        raise ValueError(f"{symbol}: no candle opens at token end {int(end_timestamp[~found][0])} ms "
                         f"({int((~found).sum())} tokens): pass the candles the tokens were made from")
    return candles["close"].to_numpy(np.float64)[at]


def agent_data_from_frames(embeddings: pd.DataFrame, trajectories: pd.DataFrame, candles: pd.DataFrame,
                           symbol: str, token_hours: int | None = None, n_past: int = N_PAST) -> AgentData:
    """One symbol's ``AgentData`` (see the module docstring). ``token_hours``: the token step in hours (default: the
    candles' timeframe × the tokens' median spacing, i.e. read from the embeddings)."""
    if n_past < 1:
        raise ValueError(f"n_past must be >= 1, got {n_past}")
    emb_cols = [c for c in embeddings.columns if c.startswith("emb_")]
    if not emb_cols or len(embeddings) < 2:
        raise ValueError(f"{symbol}: the embeddings frame needs emb_* columns and >= 2 rows, got {len(emb_cols)} "
                         f"columns and {len(embeddings)} rows")
    all_ts = embeddings["end_timestamp"].to_numpy(np.int64)  # (U,) every token, unusable ones included
    if (np.diff(all_ts) <= 0).any():
        raise ValueError(f"{symbol}: embeddings end_timestamp must be strictly increasing")
    step = int(token_hours * 3_600_000) if token_hours else int(np.median(np.diff(all_ts)))
    if step % timeframe_ms(candles.attrs.get("timeframe", "1h")):
        raise ValueError(f"{symbol}: token step {step} ms is not a whole number of candles")
    closes = token_closes(candles, all_ts, symbol)
    contiguous = np.diff(all_ts) == step  # (U − 1,) token u → u + 1 without missing candles
    log_close = np.log(closes)
    step_ret = np.where(contiguous, np.diff(log_close), 0.0)  # (U − 1,) return into token u + 1 (0 over a gap)
    into = np.concatenate([[0.0], step_ret])  # (U,) return realized by token u; 0 for the first token
    history = np.concatenate([np.zeros(n_past - 1), into])  # zeros before the first token
    past_all = np.lib.stride_tricks.sliding_window_view(history, n_past)  # (U, n_past), oldest first
    next_all = np.concatenate([np.where(contiguous, np.diff(log_close), np.nan), [np.nan]])  # (U,) label
    tradable_all = np.concatenate([contiguous, [False]])  # the last token has no successor yet

    traj_ts = trajectories["end_timestamp"].to_numpy(np.int64)
    rows, ok = exact_positions(all_ts, traj_ts)
    if not ok.all():
        raise ValueError(f"{symbol}: {int((~ok).sum())} trajectories rows have no embedding (first at "
                         f"{int(traj_ts[~ok][0])} ms): both frames must come from the same token sequence")
    names = summary_columns(trajectories)
    _, futures = futures_from_frame(trajectories)  # (T, N, H) per-token-step log returns
    return AgentData(end_timestamp=traj_ts, embedding=embeddings[emb_cols].to_numpy(np.float32)[rows],
                     mv_summary=trajectories[names].to_numpy(np.float32), past_returns=past_all[rows],
                     next_return=next_all[rows], tradable=tradable_all[rows], mv_futures=futures,
                     mv_summary_names=tuple(names), symbol=symbol)
