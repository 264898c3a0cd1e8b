"""One interface for every market source (live exchange, local files, synthetic market).

A source answers one question: *which closed candles of ``symbol`` at ``timeframe`` have an open time in
``[start_ms, end_ms)``?* It returns a candle frame (see ``fin_ia_models.data.schema``) that is sorted and unique;
it never returns a candle that has not closed yet. Sources do no storage and know nothing about Dagster.

Two kinds of failure, so callers can decide whether asking again may help:
- ``MarketDataError``: the source could not deliver now (network failure after retries, exchange down, a page that
  made no sense); a later attempt may succeed.
- ``MarketNotFoundError``: what was asked does not exist at this source (no candle file for the symbol, a folder
  that is not there, a symbol the exchange does not list). Asking again gives the same answer, so it is
  deliberately NOT a ``MarketDataError``: code that retries ``MarketDataError`` fails at once on it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pandas as pd


class MarketDataError(RuntimeError):
    """A source could not deliver candles for a reason that may pass (network failure after retries, ...)."""


class MarketNotFoundError(LookupError):
    """The asked market, timeframe, file or folder does not exist at this source: permanent, never retried."""


@runtime_checkable
class MarketSource(Protocol):
    """Anything that can deliver closed candles for a time range."""

    #: short name for logs and metadata ("binance", "files", "synthetic")
    name: str

    def fetch(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Closed candles with open time in ``[start_ms, end_ms)``, sorted and unique."""
        ...
