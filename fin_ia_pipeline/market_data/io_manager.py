"""IO manager for candle partitions, built on Dagster's ``UPathIOManager`` (so the root can be s3:// or gs://).

Layout: ``<root>/ohlcv_candles/<BTCUSDT>/<1h>/<2024-01-05>.parquet`` — one file per symbol/timeframe/day, the same
path ``CandleStoreResource.path`` gives. Writes are validated and atomic and record the content hash and the
partition (``write_candles_parquet``); every read verifies both against the partition it was asked for, so a flipped
bit or another symbol's file is an error naming the file and the partition, never data read downstream.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
from upath import UPath

from fin_ia_models.data.storage import candle_partition_relpath, read_candles_parquet, write_candles_parquet
from fin_ia_pipeline.market_data.partitions import DATE_DIM, SYMBOL_DIM
from fin_ia_pipeline.market_data.resources import CandleStoreResource


class CandlePartitionIOManager(dg.UPathIOManager):
    extension = ""  # the relative path already ends in .parquet

    def __init__(self, base_path: UPath, timeframe: str):
        super().__init__(base_path=base_path)
        self.timeframe = timeframe

    def get_path_for_partition(self, context, path: UPath, partition: str) -> UPath:
        # Multi-partition keys arrive slash-joined in dimension-name order: "<date>/<symbol>", and the symbol itself
        # may hold a slash (BTC/USDT). The date never does, so split once.
        day, symbol = partition.split("/", 1)
        return path / candle_partition_relpath(symbol, self.timeframe, day)

    def dump_to_path(self, context: dg.OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        write_candles_parquet(obj, path, day=context.asset_partition_key.keys_by_dimension[DATE_DIM])

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame:
        return self._read(path, context.asset_partition_key)

    def _read(self, path: UPath, key: dg.MultiPartitionKey) -> pd.DataFrame:
        dims = key.keys_by_dimension
        return read_candles_parquet(path, dims[SYMBOL_DIM], self.timeframe, dims[DATE_DIM])

    def load_partitions(self, context: dg.InputContext):
        """One partition → its frame. Several (a downstream stage reading a whole history) → ``{key: frame}`` of
        those stored; with ``allow_missing_partitions`` the absent days (never materialized, or before a symbol
        listed) are skipped with one summary line instead of one warning per day."""
        paths = self._get_paths_for_partitions(context)
        if len(paths) == 1:
            (path,) = paths.values()
            return self.load_from_path(context, path)
        allow_missing = (context.definition_metadata or {}).get("allow_missing_partitions", False)
        present = {key: path for key, path in paths.items() if path.exists()}
        if len(present) < len(paths) and not allow_missing:
            raise FileNotFoundError(
                f"{len(paths) - len(present)} of {len(paths)} ohlcv_candles partitions are not stored "
                f"(first missing: {next(k for k in paths if k not in present)}); materialize them first"
            )
        context.log.info(f"loading {len(present)} stored ohlcv_candles partitions "
                         f"({len(paths) - len(present)} absent ones skipped)")
        return {key: self._read(path, key) for key, path in present.items()}


class CandleIOManager(dg.ConfigurableIOManagerFactory):
    """Stores ``ohlcv_candles`` partitions under the candle store's root."""

    store: CandleStoreResource

    def create_io_manager(self, context) -> CandlePartitionIOManager:
        return CandlePartitionIOManager(UPath(self.store.root), self.store.timeframe)
