"""One interface for every market source (live exchange, local files, synthetic market).

A source answers one question: *which closed candles of ``symbol`` at ``timeframe`` have an open time in
``[start_ms, end_ms)``?* It returns a candle frame (see ``fin_ia_models.data.schema``) that is sorted and unique;
it never returns a candle that has not closed yet. Sources do no storage and know nothing about Dagster.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pandas as pd


class MarketDataError(RuntimeError):
    """A source could not deliver candles (network failure after retries, missing file, ...)."""


@runtime_checkable
class MarketSource(Protocol):
    """Anything that can deliver closed candles for a time range."""

    #: short name for logs and metadata ("binance", "files", "synthetic")
    name: str

    def fetch(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Closed candles with open time in ``[start_ms, end_ms)``, sorted and unique."""
        ...
