"""Resources of the market-data stage: the swappable market source and the candle store."""

from __future__ import annotations

import dagster as dg
import pandas as pd
from pydantic import PrivateAttr
from upath import UPath

from fin_ia_models.data.sources.base import MarketSource
from fin_ia_models.data.storage import candle_partition_relpath, read_candles_parquet, write_candles_parquet


class MarketSourceResource(dg.ConfigurableResource):
    """Where candles come from: ``synthetic`` (offline, seeded), ``files`` (a folder of CSV/parquet) or ``binance``
    (live public endpoints through ccxt; any ccxt exchange id via ``exchange``). Chosen by ``FIN_IA_SOURCE``."""

    kind: str = "synthetic"
    data_dir: str = "../shared/data/binance"
    exchange: str = "binance"
    seed: int = 0
    _source: MarketSource | None = PrivateAttr(default=None)

    def get_source(self) -> MarketSource:
        """The source object, built once per resource instance (the files source caches loaded files)."""
        if self._source is None:
            self._source = self._build()
        return self._source

    def _build(self) -> MarketSource:
        if self.kind == "synthetic":
            from fin_ia_models.data.sources.synthetic import SyntheticMarket, SyntheticMarketConfig

            return SyntheticMarket(SyntheticMarketConfig(seed=self.seed))
        if self.kind == "files":
            from fin_ia_models.data.sources.files import FilesSource

            return FilesSource(self.data_dir)
        if self.kind == "binance":
            from fin_ia_models.data.sources.ccxt_source import CcxtSource, CcxtSourceConfig

            return CcxtSource(CcxtSourceConfig(exchange_id=self.exchange))
        raise ValueError(f"unknown market source kind {self.kind!r}: expected synthetic, files or binance")


class CandleStoreResource(dg.ConfigurableResource):
    """Root of stored candle parquet files (local path or s3:// / gs:// URL), shared by the IO manager and the
    asset's incremental refresh so both agree on one layout."""

    root: str
    timeframe: str = "1h"

    @property
    def asset_root(self) -> UPath:
        return UPath(self.root) / "ohlcv_candles"

    def path(self, symbol: str, day: str) -> UPath:
        return self.asset_root / candle_partition_relpath(symbol, self.timeframe, day)

    def read(self, symbol: str, day: str) -> pd.DataFrame | None:
        """The stored day, verified against its partition (content hash, symbol, timeframe, day), or None if it was
        never stored; a corrupt or foreign file is a ``CorruptPartitionError`` naming it."""
        path = self.path(symbol, day)
        return read_candles_parquet(path, symbol, self.timeframe, day) if path.exists() else None

    def write(self, symbol: str, day: str, frame: pd.DataFrame) -> None:
        """Validate ``frame`` as the (symbol, day) partition and store it atomically with its content hash."""
        write_candles_parquet(frame, self.path(symbol, day), day=day)
