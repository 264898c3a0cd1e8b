"""Automation through the real daemon: new candles of one symbol land, and `derived_assets` (Dagster's automation
condition sensor, running in `dagster dev`'s daemon) requests `token_sequences` of that symbol — although almost
every historical candle day (2017 onwards) was never materialized.

Setup in-process on a real instance: candles of the demo window written to the store, the tokenizer trained (a
2-epoch run) and both symbols' token sequences materialized. Then `dagster dev` runs on that instance; once the
sensor has ticked (so the state above is its baseline), one candle partition of BTC/USDT is launched the way the UI
launches it (GraphQL), and the test waits for the run the sensor requests. The evaluation-API version of this test
is in test_pipeline_models.py; this one proves the daemon really does it.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import dagster as dg
import pytest

from fin_ia_models.data.refresh import day_bounds_ms
from fin_ia_models.data.sources.synthetic import SyntheticMarket, SyntheticMarketConfig
from fin_ia_models.data.storage import write_candles_parquet
from fin_ia_pipeline.definitions import build_definitions
from fin_ia_pipeline.demo import demo_dates
from fin_ia_pipeline.market_data.resources import CandleStoreResource
from fin_ia_pipeline.settings import PipelineSettings
from tests.ui_support import REPO, graphql, start_dagster_dev, stop_process_group, wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

LOCATION = "fin_ia"
SENSOR_TICKS = """query { sensorOrError(sensorSelector: {repositoryLocationName: "fin_ia",
  repositoryName: "__repository__", sensorName: "derived_assets"}) {
  __typename ... on Sensor { sensorState { status ticks(limit: 5) { status timestamp } } } } }"""
LAUNCH_RUN = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
SYMBOL, DAY = "BTC/USDT", "2024-12-31"


def _prepare_instance(dagster_home: Path, settings: PipelineSettings) -> None:
    store = CandleStoreResource(root=settings.storage_root, timeframe=settings.timeframe)
    market = SyntheticMarket(SyntheticMarketConfig(seed=settings.seed))
    for symbol in settings.symbols:
        for day in demo_dates(settings):
            start, end = day_bounds_ms(day)
            write_candles_parquet(market.fetch(symbol, settings.timeframe, start, end), store.path(symbol, day).path)
    defs = build_definitions(settings)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        def mat(name, partition=None, run_config=None):
            result = dg.materialize(list(defs.assets), selection=[name], partition_key=partition,
                                    resources=defs.resources, instance=instance, run_config=run_config or {})
            assert result.success, name

        mat("tokenizer_model", run_config={"ops": {"tokenizer_model": {"config": {"epochs": 2}}}})
        for symbol in settings.symbols:
            mat("token_sequences", symbol)


def _wait_for_tick(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = graphql(url, SENSOR_TICKS)["sensorOrError"]["sensorState"]
        assert state["status"] == "RUNNING", f"derived_assets is {state['status']}: it must run by default"
        if any(t["status"] in ("SKIPPED", "SUCCESS") for t in state["ticks"]):
            return
        time.sleep(2)
    raise TimeoutError(f"derived_assets did not tick within {timeout_s:.0f}s")


def _launch_candle_partition(url: str) -> str:
    params = {"selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__",
                           "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": ["ohlcv_candles"]}]},
              "mode": "default", "runConfigData": {},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": f"{DAY}|{SYMBOL}"},
                                             {"key": "dagster/partition/date", "value": DAY},
                                             {"key": "dagster/partition/symbol", "value": SYMBOL}]}}
    answer = graphql(url, LAUNCH_RUN, variables={"params": params})["launchRun"]
    assert answer["__typename"] == "LaunchRunSuccess", answer
    return answer["run"]["runId"]


def _automation_runs(instance: dg.DagsterInstance, after: str) -> list:
    runs = instance.get_runs()
    return [r for r in runs if r.run_id != after and r.asset_selection
            and dg.AssetKey("token_sequences") in r.asset_selection]


def test_daemon_requests_token_sequences_after_new_candles(tmp_path):
    dagster_home, home = tmp_path / "dagster_home", tmp_path / "fin_ia_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    settings = PipelineSettings(home=str(home))  # what `dagster dev` reads from its (FIN_IA_*-free) environment
    _prepare_instance(dagster_home, settings)

    server = start_dagster_dev(dagster_home, home, tmp_path / "dagster_dev.log")
    try:
        wait_until_ready(server, LOCATION, 180)
        _wait_for_tick(server.url, 120)  # the state prepared above is the sensor's baseline, not news
        candle_run = _launch_candle_partition(server.url)
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            deadline = time.monotonic() + 240
            requested = []
            while time.monotonic() < deadline and not requested:
                time.sleep(3)
                requested = _automation_runs(instance, candle_run)
            assert requested, f"the daemon requested no token_sequences run:\n{server.log_tail(3000)}"
            run = requested[0]
            assert run.tags.get("dagster/partition") == SYMBOL, run.tags  # that symbol only
            assert instance.get_run_by_id(candle_run).status == dg.DagsterRunStatus.SUCCESS
            assert dg.AssetKey("jepa_embeddings") not in run.asset_selection  # its model was never trained
    finally:
        stop_process_group(server.process)
