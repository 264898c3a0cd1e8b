"""ohlcv_candles end to end through Dagster: real instance, real parquet, synthetic and files sources."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG as RANGE_END
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_START_TAG as RANGE_START

from fin_ia_models.data.storage import read_candles_parquet, write_candles_parquet
from fin_ia_pipeline.definitions import build_definitions
from fin_ia_pipeline.market_data.partitions import candle_partition_key
from fin_ia_pipeline.settings import PipelineSettings

REPO = Path(__file__).resolve().parents[1]


def settings_for(tmp_path, **kw) -> PipelineSettings:
    return PipelineSettings(home=str(tmp_path / "home"), **kw)


def run_partition(settings, symbol, day, instance, raise_on_error=True):
    job = build_definitions(settings).resolve_job_def("refresh_candles")
    return job.execute_in_process(
        partition_key=candle_partition_key(symbol, day), instance=instance, raise_on_error=raise_on_error
    )


def materialization_meta(result) -> dict:
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


def checks_of(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_definitions_load_with_the_expected_shape(tmp_path):
    defs = build_definitions(settings_for(tmp_path))
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("ohlcv_candles"))
    assert node.group_name == "market_data"
    dims = {d.name: d.partitions_def for d in node.partitions_def.partitions_defs}
    assert dims["symbol"].get_partition_keys() == ["BTC/USDT", "ETH/USDT"]
    assert isinstance(dims["date"], dg.DailyPartitionsDefinition)
    assert {c.name for c in graph.asset_check_keys} >= {"ohlc_consistent", "gaps_within_tolerance", "candles_fresh"}
    assert defs.resolve_schedule_def("hourly_candle_refresh")


def test_materialize_with_synthetic_source(tmp_path):
    settings = settings_for(tmp_path, source="synthetic")
    with dg.instance_for_test() as instance:
        result = run_partition(settings, "BTC/USDT", "2024-03-01", instance)
    meta = materialization_meta(result)
    assert meta["rows"] == 24 and meta["gaps"] == 0 and meta["source"] == "synthetic"
    assert meta["first_candle"] == "2024-03-01 00:00 UTC" and meta["last_candle"] == "2024-03-01 23:00 UTC"
    assert checks_of(result) == {"ohlc_consistent": True, "gaps_within_tolerance": True}
    stored = read_candles_parquet(Path(meta["path"]))
    assert len(stored) == 24 and stored.attrs["symbol"] == "BTC/USDT"


def test_materialize_with_files_source_reports_real_gaps(tmp_path, binance_dir):
    settings = settings_for(tmp_path, source="files", data_dir=str(binance_dir))
    with dg.instance_for_test() as instance:
        # 2018-02-08 00:00 → 2018-02-09 10:00 is a 33-candle Binance maintenance gap in BTCUSDT_1h
        result = run_partition(settings, "BTC/USDT", "2018-02-08", instance)
    meta = materialization_meta(result)
    assert meta["rows"] == 1 and meta["missing_candles"] == 0  # only the 00:00 candle exists that day
    assert checks_of(result) == {"ohlc_consistent": True, "gaps_within_tolerance": False}


def test_rematerializing_is_idempotent(tmp_path, binance_dir):
    settings = settings_for(tmp_path, source="files", data_dir=str(binance_dir))
    with dg.instance_for_test() as instance:
        first = materialization_meta(run_partition(settings, "ETH/USDT", "2024-06-01", instance))
        before = Path(first["path"]).read_bytes()
        second = materialization_meta(run_partition(settings, "ETH/USDT", "2024-06-01", instance))
    assert second["fetched"] == 0 and second["rows"] == 24
    assert Path(second["path"]).read_bytes() == before


def test_failed_refresh_leaves_stored_partition_unchanged(tmp_path):
    """A day stored up to noon; the files now hold a malformed candle: the run fails, naming the rule; the file
    on disk is byte-identical afterwards."""
    data = tmp_path / "data"
    data.mkdir()
    day = "2024-01-01"
    from tests.conftest import make_candles

    good = make_candles(24)
    good.attrs["symbol"] = "BTC/USDT"
    settings = settings_for(tmp_path, source="files", data_dir=str(data), symbols=("BTC/USDT",))
    stored = Path(settings.storage_root) / "ohlcv_candles" / "BTCUSDT" / "1h" / f"{day}.parquet"
    write_candles_parquet(good.iloc[:12].reset_index(drop=True), stored)
    before = stored.read_bytes()
    bad = good.copy()
    bad.loc[15, "low"] = bad.loc[15, "high"] * 2
    bad.rename(columns={"timestamp": "timestamp_ms"}).to_csv(data / "BTCUSDT_1h.csv", index=False)
    with dg.instance_for_test() as instance:
        result = run_partition(settings, "BTC/USDT", day, instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "[low_bound]" in str(failure.event_specific_data.error) and "line 17" in str(failure.event_specific_data.error)
    assert stored.read_bytes() == before


def test_freshness_is_judged_only_when_the_latest_day_is_refreshed(tmp_path, binance_dir):
    """A historical partition never evaluates candles_fresh (a backfill cannot turn it red); refreshing today's
    partition does: fresh from a live-like source, stale from files that end in 2024."""
    today = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
    with dg.instance_for_test() as instance:
        old = run_partition(settings_for(tmp_path / "a", source="synthetic"), "BTC/USDT", "2024-03-01", instance)
        assert set(checks_of(old)) == {"ohlc_consistent", "gaps_within_tolerance"}
        stale = run_partition(settings_for(tmp_path / "b", source="files", data_dir=str(binance_dir)), "BTC/USDT",
                              today, instance)
        assert checks_of(stale)["candles_fresh"] is False
        if pd.Timestamp.now(tz="UTC").hour == 0 and pd.Timestamp.now(tz="UTC").minute < 2:
            pytest.skip("first minutes of a UTC day: no closed candle yet to be fresh with")
        fresh = run_partition(settings_for(tmp_path / "c", source="synthetic"), "BTC/USDT", today, instance)
        assert checks_of(fresh)["candles_fresh"] is True


def test_hourly_schedule_requests_today_and_yesterday_after_midnight(tmp_path):
    defs = build_definitions(settings_for(tmp_path))
    schedule = defs.resolve_schedule_def("hourly_candle_refresh")
    # contexts used as context managers: a context left open leaks Dagster's current defs-state storage (a
    # ContextVar) past the temporary instance, and a later test's definitions load then opens a deleted database
    with dg.instance_for_test() as instance:
        with dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                       scheduled_execution_time=pd.Timestamp("2024-05-02 00:05", tz="UTC")) as ctx:
            (request,) = schedule.evaluate_tick(ctx).run_requests  # one run: every symbol × yesterday and today
        assert (request.tags[RANGE_START], request.tags[RANGE_END]) == ("2024-05-01|BTC/USDT", "2024-05-02|ETH/USDT")
        keys = defs.resolve_assets_def("ohlcv_candles").partitions_def.get_partition_keys_in_range(
            dg.PartitionKeyRange(request.tags[RANGE_START], request.tags[RANGE_END]))
        assert sorted(keys) == ["2024-05-01|BTC/USDT", "2024-05-01|ETH/USDT", "2024-05-02|BTC/USDT",
                                "2024-05-02|ETH/USDT"]
        with dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                       scheduled_execution_time=pd.Timestamp("2024-05-02 13:05", tz="UTC")) as ctx:
            (request,) = schedule.evaluate_tick(ctx).run_requests
        assert (request.tags[RANGE_START], request.tags[RANGE_END]) == ("2024-05-02|BTC/USDT", "2024-05-02|ETH/USDT")


def test_settings_from_env_and_bad_values():
    s = PipelineSettings.from_env({"FIN_IA_SOURCE": "files", "FIN_IA_SYMBOLS": "SOL/USDT, BNB/USDT", "FIN_IA_HOME": "/x"})
    assert s.source == "files" and s.symbols == ("SOL/USDT", "BNB/USDT") and s.storage_root == "/x/storage"
    with pytest.raises(ValueError, match="FIN_IA_SOURCE"):
        PipelineSettings.from_env({"FIN_IA_SOURCE": "kraken"})
    with pytest.raises(ValueError, match="unknown timeframe"):
        PipelineSettings.from_env({"FIN_IA_TIMEFRAME": "7m"})
    # every malformed value names the variable (and the value)
    for env, message in (({"FIN_IA_SEED": "abc"}, "FIN_IA_SEED must be an integer, got 'abc'"),
                         ({"FIN_IA_DRIFT_PSI": "high"}, "FIN_IA_DRIFT_PSI must be a number"),
                         ({"FIN_IA_START": "now"}, "FIN_IA_START must be a calendar date"),
                         ({"FIN_IA_START": "yesterday"}, "FIN_IA_START must be a date"),
                         ({"FIN_IA_START": "2030-01-01"}, "FIN_IA_START=2030-01-01 is in the future"),
                         ({"FIN_IA_START": "2024-10-15"}, "after the start of the 'demo' profile's training window"),
                         ({"FIN_IA_PROFILE": "huge"}, "unknown profile 'huge'"),
                         ({"FIN_IA_QUANTIZER": "rvq"}, "FIN_IA_QUANTIZER")):
        with pytest.raises(ValueError, match=message):
            PipelineSettings.from_env(env)
    assert PipelineSettings.from_env({"FIN_IA_START": "2024-09-01"}).start_date == "2024-09-01"


def test_dagster_definitions_validate_cli(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "FIN_IA_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_a_corrupt_or_foreign_partition_fails_downstream_reads_and_rematerializing_repairs_it(tmp_path):
    """A value flipped in place, or another symbol's file in the partition's place: a read names the file and the
    partition; materializing the partition again refetches the day and says so, instead of keeping or relabelling."""
    settings = settings_for(tmp_path, source="synthetic")
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        run_partition(settings, "BTC/USDT", "2024-03-01", instance)
        run_partition(settings, "ETH/USDT", "2024-03-01", instance)
        root = Path(settings.storage_root) / "ohlcv_candles"
        btc, eth = (root / slug / "1h" / "2024-03-01.parquet" for slug in ("BTCUSDT", "ETHUSDT"))
        original = read_candles_parquet(btc)
        btc.write_bytes(eth.read_bytes())  # an ETH file in the BTC place
        with pytest.raises(Exception, match="symbol"):
            with defs.get_asset_value_loader(instance=instance) as loader:
                loader.load_asset_value("ohlcv_candles", partition_key=candle_partition_key("BTC/USDT", "2024-03-01"))
        repaired = materialization_meta(run_partition(settings, "BTC/USDT", "2024-03-01", instance))
        assert "symbol" in repaired["repaired"]
        pd.testing.assert_frame_equal(read_candles_parquet(btc, "BTC/USDT", "1h", "2024-03-01"), original)


def test_a_missing_candle_file_fails_at_once_without_retries(tmp_path):
    settings = settings_for(tmp_path, source="files", data_dir=str(tmp_path / "empty"), symbols=("BTC/USDT",))
    (tmp_path / "empty").mkdir()
    with dg.instance_for_test() as instance:
        result = run_partition(settings, "BTC/USDT", "2024-03-01", instance, raise_on_error=False)
    assert not result.success
    kinds = [e.event_type_value for e in result.all_events]
    assert "STEP_UP_FOR_RETRY" not in kinds and kinds.count("STEP_FAILURE") == 1


def test_colliding_or_non_canonical_symbols_are_refused_by_the_settings():
    for symbols in ("BTC/USDT,BTC-USDT", "BTC/USDT,btc/usdt", "../etc/passwd", "BTC/USDT,ETH/USDT,BTCU/SDT"):
        with pytest.raises(ValueError, match="FIN_IA_SYMBOLS"):
            PipelineSettings.from_env({"FIN_IA_SYMBOLS": symbols})


def test_a_backfill_range_in_one_run_equals_one_run_per_partition_byte_for_byte(tmp_path):
    """The backfill path (BackfillPolicy: a range of days of every symbol in one run) writes exactly the files the
    per-partition path writes, and records one materialization and one evaluation of each check per partition."""
    days = [d.strftime("%Y-%m-%d") for d in pd.date_range("2024-03-01", "2024-03-06", freq="D")]
    ranged, single = settings_for(tmp_path / "range"), settings_for(tmp_path / "single")
    with dg.instance_for_test() as instance:
        job = build_definitions(ranged).resolve_job_def("refresh_candles")
        result = job.execute_in_process(instance=instance, tags={
            RANGE_START: str(candle_partition_key("BTC/USDT", days[0])),
            RANGE_END: str(candle_partition_key("ETH/USDT", days[-1]))})
        assert result.success
        materialized = sorted(e.partition for e in result.get_asset_materialization_events())
        assert materialized == sorted(f"{d}|{s}" for d in days for s in ("BTC/USDT", "ETH/USDT"))
        evaluations = [(e.check_name, e.partition) for e in result.get_asset_check_evaluations()]
        assert sorted(p for c, p in evaluations if c == "ohlc_consistent") == materialized
        assert sorted(p for c, p in evaluations if c == "gaps_within_tolerance") == materialized
        for symbol in ("BTC/USDT", "ETH/USDT"):
            for day in days:
                run_partition(single, symbol, day, instance)
    files = sorted(p.relative_to(Path(ranged.storage_root)) for p in Path(ranged.storage_root).rglob("*.parquet"))
    assert len(files) == 12
    for rel in files:
        assert (Path(ranged.storage_root) / rel).read_bytes() == (Path(single.storage_root) / rel).read_bytes(), rel
