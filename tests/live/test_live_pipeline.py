"""``paper_decisions`` through Dagster: a real instance, candles stored by the candle store, two agent versions
registered on a real sqlite MLflow (champion and candidate); and the skip when no agent is registered."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from fin_ia_models.data.schema import day_bounds_ms
from fin_ia_models.data.sources.synthetic import SyntheticMarket, SyntheticMarketConfig
from fin_ia_models.data.storage import write_candles_parquet
from fin_ia_models.live.engine import DecisionEngine
from fin_ia_pipeline.live.assets import build_paper_decisions
from fin_ia_pipeline.definitions import build_definitions
from fin_ia_pipeline.market_data.resources import CandleStoreResource
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tracking.resource import MlflowResource
from tests.live.conftest import register_stacks

pytestmark = pytest.mark.slow
SYMBOLS = ("BTC/USDT", "ETH/USDT")
DAYS = [d.strftime("%Y-%m-%d") for d in pd.date_range("2024-01-01", "2024-03-10", freq="D")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    settings = PipelineSettings(home=str(tmp), symbols=SYMBOLS, start_date="2024-01-01")
    store = CandleStoreResource(root=settings.storage_root, timeframe=settings.timeframe)
    market = SyntheticMarket(SyntheticMarketConfig(seed=3))
    for symbol in SYMBOLS:
        for day in DAYS:
            write_candles_parquet(market.fetch(symbol, "1h", *day_bounds_ms(day)), store.path(symbol, day).path)
    first, last = day_bounds_ms(DAYS[0])[0], day_bounds_ms(DAYS[-1])[1]
    btc = market.fetch("BTC/USDT", "1h", first, last)
    mlflow = MlflowResource(tracking_uri=settings.mlflow_tracking_uri, artifact_root=settings.mlflow_artifact_root)
    return settings, store, mlflow, btc


def materialize(settings, store, mlflow, partition: str, agents=None, instance=None):
    asset, _ = build_paper_decisions(settings)
    config = {} if agents is None else {"agents": agents}
    return dg.materialize([asset], partition_key=partition, resources={"mlflow": mlflow, "candle_store": store},
                          run_config={"ops": {"paper_decisions": {"config": config}}}, instance=instance)


def test_without_a_registered_agent_it_skips_with_a_message(setup):
    settings, store, mlflow, _ = setup
    with dg.instance_for_test() as instance:
        result = materialize(settings, store, mlflow, "2024-03-10-12:00", agents=["fin-ia-agent-nothing"],
                             instance=instance)
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert result.success
    assert result.get_asset_materialization_events() == []
    assert any("paper_decisions skipped" in m and "fin-ia-agent-nothing" in m for m in messages)


def test_paper_decisions_of_champion_and_candidate(setup):
    settings, store, mlflow, btc = setup
    specs = register_stacks(mlflow.target(), btc)
    metas = []
    for partition in ("2024-03-10-14:00", "2024-03-10-15:00", "2024-03-10-16:00"):
        result = materialize(settings, store, mlflow, partition)
        assert result.success
        (event,) = result.get_asset_materialization_events()
        metas.append(event.materialization.metadata)
    meta = metas[-1]
    assert meta["champion_cvar_version"].value == specs[0] and meta["candidate_cvar_version"].value == specs[1]
    assert "data:image/png;base64" in meta["equity"].value
    for role in ("champion", "candidate"):
        assert meta[f"{role}_cvar_latency_non_patch_p50_ms"].value > 0
        assert np.isfinite(meta[f"{role}_cvar_paper_net_log_return"].value)
    assert "BTC/USDT" in meta["champion_cvar_positions"].value
    # candle index k = open time / 1 h ends a patch when (k + 1) % 16 == 0: the candle opening 2024-03-10 15:00
    assert "champion_cvar_latency_patch_p50_ms" not in metas[0] and "champion_cvar_latency_patch_p50_ms" in metas[1]
    # the shadow decisions are the library engine's on the same candles (state carried over hours, warm started
    # on the stored history before the first)
    ledger = pd.read_parquet(store.asset_root.parent / "live" / "ledger" / f"{specs[0].replace('/', '__v')}.parquet")
    engine = DecisionEngine.from_registry(specs[0], mlflow.tracking_uri, seed=settings.seed)
    start = int(pd.Timestamp("2024-03-10 14:00", tz="UTC").timestamp() * 1000)
    engine.warm_start("BTC/USDT", btc[btc["timestamp"] < start])
    want = engine.run("BTC/USDT", btc[(btc["timestamp"] >= start) & (btc["timestamp"] < start + 3 * 3_600_000)])
    got = ledger[ledger["symbol"] == "BTC/USDT"]
    assert got["timestamp"].tolist() == [d.timestamp for d in want]
    np.testing.assert_allclose(got["position"], [d.position for d in want], rtol=0, atol=0)
    assert (store.asset_root.parent / "live" / "state" / f"{specs[1].replace('/', '__v')}.npz").exists()


def test_definitions_load_with_the_schedule_stopped(setup):
    settings, *_ = setup
    defs = build_definitions(settings)  # the live stage merged with the others (their resources)
    schedule = defs.get_schedule_def("hourly_paper_decisions")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert defs.get_assets_def("paper_decisions").group_names_by_key[dg.AssetKey("paper_decisions")] == "live"


def test_cli_decide_prints_the_last_decision(setup, monkeypatch, capsys):
    import json

    from fin_ia_pipeline.cli import main

    settings, store, mlflow, btc = setup
    monkeypatch.setenv("FIN_IA_HOME", settings.home)
    for var in ("MLFLOW_TRACKING_URI", "FIN_IA_STORAGE", "FIN_IA_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FIN_IA_SYMBOLS", ",".join(SYMBOLS))
    monkeypatch.setenv("FIN_IA_START", settings.start_date)
    if not any(m.name == "fin-ia-agent-cvar" for m in __import__("mlflow").MlflowClient(
            mlflow.tracking_uri).search_registered_models()):
        register_stacks(mlflow.target(), btc)
    assert main(["decide", "ETH/USDT", "--model", "fin-ia-agent-cvar@candidate", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["symbol"] == "ETH/USDT" and -1.0 <= out["position"] <= 1.0 and out["token_end"] > 0
    assert out["timestamp"] == int(pd.Timestamp(DAYS[-1] + " 23:00", tz="UTC").timestamp() * 1000)
    assert out["versions"]["agent"].startswith("fin-ia-agent-cvar/")
    assert main(["decide", "ETH/USDT", "--model", "fin-ia-agent-cvar@nosuch"]) == 2
    assert "nosuch" in capsys.readouterr().err
