"""``fin-ia decide``: the decision of a registered agent for the last closed candle in storage (never an order).

The agent's streaming state is the paper_decisions state when there is one for this version (its position carries
on); otherwise a state-only warm start over the stored candles before the last completed token, which is then
decided from a flat position, and the candles after it are held."""

from __future__ import annotations

import pandas as pd
from upath import UPath

from fin_ia_models.data.schema import timeframe_ms
from fin_ia_models.live.engine import Decision, DecisionEngine
from fin_ia_pipeline.live.assets import AGENT_MODELS, stored_candles
from fin_ia_pipeline.market_data.resources import CandleStoreResource
from fin_ia_pipeline.settings import PipelineSettings


def default_model(tracking_uri: str) -> str:
    from fin_ia_models.live.registry import shadow_specs

    champions = [spec for role, spec in shadow_specs(tracking_uri, AGENT_MODELS) if role == "champion"]
    if not champions:
        raise ValueError(f"no @champion version of {', '.join(AGENT_MODELS)} is registered in {tracking_uri}: "
                         "materialize an agent, or name one with --model NAME@ALIAS")
    return champions[0]


def decide_last(settings: PipelineSettings, symbol: str, model: str | None = None) -> Decision:
    uri = settings.mlflow_tracking_uri
    spec = model or default_model(uri)
    engine = DecisionEngine.from_registry(spec, uri, seed=settings.seed, timeframe=settings.timeframe)
    store = CandleStoreResource(root=settings.storage_root, timeframe=settings.timeframe)
    now = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)  # every stored candle has opened before now
    state = UPath(settings.storage_root) / "live" / "state" / f"{engine.versions['agent'].replace('/', '__v')}.npz"
    if state.exists():
        try:
            engine.load_state(state)
        except ValueError:
            engine.streams.clear()  # another version's or format's state: warm start below
    stream = engine.streams.get(symbol)
    candles = stored_candles(store, symbol, stream.last_ts if stream is not None else 0, now)
    if candles is None:
        raise ValueError(f"no stored {symbol} candles under {store.asset_root}: materialize ohlcv_candles first")
    if stream is not None and stream.last_token_ts >= 0:
        newer = candles[candles["timestamp"] > stream.last_ts]
        decisions = engine.run(symbol, newer)
        if decisions:
            return decisions[-1]
    candles = stored_candles(store, symbol, 0, now)  # the whole stored history for the warm start
    step = timeframe_ms(settings.timeframe)
    ends = candles["timestamp"][((candles["timestamp"] // step) + 1) % engine.stack.patch_len == 0]
    if ends.empty:
        raise ValueError(f"{symbol}: no completed {engine.stack.patch_len}-candle patch in storage yet")
    last_token = int(ends.iloc[-1])
    engine.streams.pop(symbol, None)
    engine.warm_start(symbol, candles[candles["timestamp"] < last_token])
    return engine.run(symbol, candles[candles["timestamp"] >= last_token])[-1]
