"""Content digests and descriptions of the data a model was trained on (logged with ``mlflow.data``).

The digest is a SHA-256 over the values themselves (timestamps and float64 columns, symbol by symbol in sorted
order), so the same candles always give the same digest and any changed value, added or dropped candle changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


def frames_digest(frames: Mapping[str, pd.DataFrame]) -> str:
    """SHA-256 (hex) of every column of every frame, in symbol order; independent of pandas' index or memory layout."""
    sha = hashlib.sha256()
    for symbol in sorted(frames):
        frame = frames[symbol]
        sha.update(symbol.encode())
        for column in frame.columns:
            sha.update(str(column).encode())
            values = frame[column].to_numpy()
            values = values.astype(np.int64) if values.dtype.kind in "iu" else values.astype(np.float64)
            sha.update(np.ascontiguousarray(values).tobytes())
    return sha.hexdigest()


@dataclass(frozen=True)
class DatasetRef:
    """What a training run consumed: enough to find the exact rows again and to prove they did not change."""

    name: str  # asset it came from: "ohlcv_candles", "token_sequences", ...
    symbols: tuple[str, ...]
    timeframe: str
    start_ms: int  # first row's time (candle open time, or token end time)
    end_ms: int  # last row's time
    rows: int
    digest: str  # frames_digest of the rows used
    source: str  # where the asset is stored (path or URL)
    context: str = "training"  # MLflow input context: training / evaluation
    extra: dict[str, str] = field(default_factory=dict)  # e.g. the tokenizer version that made the tokens

    def tags(self) -> dict[str, str]:
        base = {
            "fin_ia.dataset": self.name, "symbols": ",".join(self.symbols), "timeframe": self.timeframe,
            "start_ms": str(self.start_ms), "end_ms": str(self.end_ms), "rows": str(self.rows),
        }
        return {**base, **{k: str(v) for k, v in self.extra.items()}}


def dataset_ref(name: str, frames: Mapping[str, pd.DataFrame], time_column: str, timeframe: str, source: str,
                context: str = "training", extra: dict[str, str] | None = None) -> DatasetRef:
    """Describe ``frames`` (symbol → frame) for lineage; empty frames are ignored."""
    frames = {s: f for s, f in frames.items() if len(f)}
    if not frames:
        raise ValueError(f"dataset {name!r} has no rows to describe")
    starts = [int(f[time_column].iloc[0]) for f in frames.values()]
    ends = [int(f[time_column].iloc[-1]) for f in frames.values()]
    return DatasetRef(name, tuple(sorted(frames)), timeframe, min(starts), max(ends),
                      sum(len(f) for f in frames.values()), frames_digest(frames), source, context, extra or {})
