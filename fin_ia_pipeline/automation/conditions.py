"""The automation condition of derived assets (token sequences, embeddings, trajectories, ...).

Dagster's ``eager()`` waits until no dependency partition is missing. A derived asset reads a symbol's whole candle
history (every ``ohlcv_candles`` day of that symbol), and thousands of historical days are never materialized on a
typical install (the history starts in 2017; a user backfills what they need), so ``eager()`` never fired. Here,
missing candle days do not count: the asset is requested when an upstream partition or model is updated, as soon
as every non-candle dependency (the models) exists and nothing upstream is in progress.
"""

import dagster as dg

from fin_ia_pipeline.market_data.assets import MARKET_DATA


def follows_upstream() -> dg.AutomationCondition:
    missing_besides_candles = dg.AutomationCondition.any_deps_missing().ignore(dg.AssetSelection.groups(MARKET_DATA))
    return dg.AutomationCondition.eager().replace("any_deps_missing", missing_besides_candles).with_label(
        "follows upstream (missing candle days ignored)")
