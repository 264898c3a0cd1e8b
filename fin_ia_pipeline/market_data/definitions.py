"""The market-data stage's Definitions: the candle asset (its checks run inside it), refresh job, schedule, resources."""

from __future__ import annotations

import dagster as dg

from fin_ia_pipeline.market_data.assets import build_ohlcv_candles
from fin_ia_pipeline.market_data.io_manager import CandleIOManager
from fin_ia_pipeline.market_data.partitions import candle_partitions
from fin_ia_pipeline.market_data.resources import CandleStoreResource, MarketSourceResource
from fin_ia_pipeline.market_data.schedules import build_refresh_schedule
from fin_ia_pipeline.settings import PipelineSettings


def build_defs(settings: PipelineSettings) -> dg.Definitions:
    partitions = candle_partitions(settings.symbols, settings.start_date)
    ohlcv_candles = build_ohlcv_candles(partitions, settings.timeframe)
    refresh_job = dg.define_asset_job(
        "refresh_candles", selection=dg.AssetSelection.assets(ohlcv_candles),
        description="Materialize ohlcv_candles partitions (one, or a range in one run) with their checks.",
    )
    store = CandleStoreResource(root=settings.storage_root, timeframe=settings.timeframe)
    return dg.Definitions(
        assets=[ohlcv_candles],
        jobs=[refresh_job],
        schedules=[build_refresh_schedule(refresh_job, settings.symbols)],
        resources={
            "market_source": MarketSourceResource(
                kind=settings.source, data_dir=settings.data_dir, exchange=settings.exchange, seed=settings.seed
            ),
            "candle_store": store,
            "candle_io_manager": CandleIOManager(store=store),
        },
    )
