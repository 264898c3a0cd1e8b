"""Assemble Strate II inputs from upstream assets: token sequences per symbol, their exo signals, time windows."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fin_ia_models.world_model.exo_signals import exo_from_candles


def tokens_by_symbol(token_sequences: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Loaded ``token_sequences`` partitions are keyed by symbol already; drop empty ones."""
    return {symbol: frame for symbol, frame in sorted(token_sequences.items()) if len(frame)}


def exo_by_symbol(tokens: Mapping[str, pd.DataFrame], candles: Mapping[str, pd.DataFrame],
                  patch_len: int) -> dict[str, pd.DataFrame]:
    """Exo-clock signals for every token, computed causally from that symbol's candles."""
    out = {}
    for symbol, frame in tokens.items():
        if symbol not in candles:
            raise ValueError(f"no candles for {symbol}: the exo-clock needs them (materialize ohlcv_candles)")
        series = candles[symbol]
        out[symbol] = exo_from_candles(series, frame["end_timestamp"].to_numpy(np.int64), patch_len,
                                       series.attrs["timeframe"])
    return out


def in_window(frame: pd.DataFrame, start_ms: int, end_ms: int, column: str = "end_timestamp") -> pd.DataFrame:
    mask = (frame[column] >= start_ms) & (frame[column] < end_ms)
    out = frame[mask].reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    return out
