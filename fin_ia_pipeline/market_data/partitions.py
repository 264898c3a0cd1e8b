"""Partitions of ``ohlcv_candles``: symbol (static) × UTC day, today included so the hourly refresh can fill it."""

from __future__ import annotations

import dagster as dg

SYMBOL_DIM = "symbol"
DATE_DIM = "date"


def candle_partitions(symbols: tuple[str, ...], start_date: str) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            SYMBOL_DIM: dg.StaticPartitionsDefinition(list(symbols)),
            # end_offset=1: the current (still filling) day is a partition too.
            DATE_DIM: dg.DailyPartitionsDefinition(start_date=start_date, end_offset=1, timezone="UTC"),
        }
    )


def candle_partition_key(symbol: str, day: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({SYMBOL_DIM: symbol, DATE_DIM: day})
