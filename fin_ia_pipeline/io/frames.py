"""Parquet IO manager for DataFrame assets partitioned by symbol (token sequences, embeddings).

Layout ``<root>/<asset_key>/<BTCUSDT>.parquet``; written through a temporary file and an atomic rename locally.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from fin_ia_models.data.schema import symbol_slug
from fin_ia_models.data.storage import write_table_atomic


def write_frame_atomic(frame: pd.DataFrame, path: UPath) -> None:
    write_table_atomic(pa.Table.from_pandas(frame, preserve_index=False), path)


class SymbolFrameIOManager(dg.UPathIOManager):
    extension = ".parquet"

    def get_path_for_partition(self, context, path: UPath, partition: str) -> UPath:
        return path / symbol_slug(partition)

    def dump_to_path(self, context: dg.OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        write_frame_atomic(obj, path)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame:
        with path.open("rb") as handle:
            return pq.read_table(handle).to_pandas()


class SymbolFrameIOManagerFactory(dg.ConfigurableIOManagerFactory):
    """Stores symbol-partitioned frames under ``root`` (local path or s3:// / gs:// URL)."""

    root: str

    def create_io_manager(self, context) -> SymbolFrameIOManager:
        return SymbolFrameIOManager(base_path=UPath(self.root))
