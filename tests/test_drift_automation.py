"""PSI drift, the drift sensor (real instance, real parquet), the weekly retrain schedule and the automation sensor."""

from __future__ import annotations

import math

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from fin_ia_models.config import TimeSplit
from fin_ia_models.evaluation.drift import population_stability_index, token_drift
from fin_ia_pipeline.definitions import build_definitions
from fin_ia_pipeline.io.frames import write_frame_atomic
from fin_ia_pipeline.settings import PipelineSettings

SPLIT = TimeSplit(train_start="2024-01-01", train_end="2024-02-15", val_start="2024-02-16", val_end="2024-02-29",
                  test_start="2024-03-01", test_end="2024-03-31", embargo_hours=24)


def test_psi_hand_computed():
    # reference shares (0.5, 0.5), recent (0.25, 0.75); no smoothing prior
    psi = population_stability_index(np.array([0, 1]), np.array([0, 1, 1, 1]), n_bins=2, prior=0.0)
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi == pytest.approx(expected)
    same = population_stability_index(np.arange(100) % 10, np.arange(50) % 10, n_bins=10)
    assert same == pytest.approx(0.0, abs=1e-9)


def test_psi_rejects_empty_windows_and_out_of_range_ids():
    with pytest.raises(ValueError, match="both windows"):
        population_stability_index(np.array([], np.int64), np.array([1]), 4)
    with pytest.raises(ValueError, match="must lie in"):
        population_stability_index(np.array([5]), np.array([1]), 4)


def tokens_frame(rng, drift: bool) -> pd.DataFrame:
    ends = pd.date_range("2024-01-01 15:00", "2024-03-31 23:00", freq="16h", tz="UTC")
    ts = ends.as_unit("ms").asi8.astype(np.int64)
    tokens = rng.integers(0, 1024, len(ts))
    if drift:
        last_week = ts >= ts[-1] - 7 * 86_400_000
        tokens[last_week] = rng.integers(900, 910, last_week.sum())  # a regime the training window never saw
    return pd.DataFrame({"end_timestamp": ts, "token": tokens.astype(np.int64)})


def test_token_drift_windows_against_the_no_drift_level():
    reference = (SPLIT.range_ms("train")[0], SPLIT.range_ms("val")[1])
    fired = 0
    for seed in range(20):  # no drift: PSI rarely exceeds its own sampling-noise p95
        calm = token_drift(tokens_frame(np.random.default_rng(seed), drift=False), reference, 7, 1024)
        fired += calm["psi"] > max(0.25, calm["psi_no_drift_p95"])
    assert fired <= 3
    shifted = token_drift(tokens_frame(np.random.default_rng(0), drift=True), reference, 7, 1024)
    assert calm["recent_tokens"] == shifted["recent_tokens"] > 5
    assert shifted["psi"] > max(0.25, shifted["psi_no_drift_p95"])  # fires


@pytest.mark.parametrize("drift", [False, True])
def test_drift_sensor_requests_retrain_only_on_drift_and_records_psi(tmp_path, drift):
    settings = PipelineSettings(home=str(tmp_path), symbols=("BTC/USDT",), split=SPLIT)
    write_frame_atomic(tokens_frame(np.random.default_rng(1), drift),
                       __import__("upath").UPath(settings.storage_root) / "frames" / "token_sequences" / "BTCUSDT.parquet")
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("token_drift")
    with dg.instance_for_test() as instance:
        # what token_sequences records on materialization: the codebook size the sensor bins the codes of
        instance.report_runless_asset_event(dg.AssetMaterialization("token_sequences", partition="BTC/USDT",
                                                                    metadata={"codebook_size": 1024}))
        with dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def()) as context:
            result = sensor(context)
    (observation,) = result.asset_events
    assert observation.asset_key == dg.AssetKey("token_sequences") and observation.partition == "BTC/USDT"
    psi = observation.metadata["drift_psi"].value
    assert (psi > max(0.25, observation.metadata["drift_psi_no_drift_p95"].value)) is drift
    assert len(result.run_requests) == int(drift)
    if drift:
        assert result.run_requests[0].tags["fin_ia/drifted"] == "BTC/USDT"


def test_drift_sensor_without_tokens_requests_nothing(tmp_path):
    defs = build_definitions(PipelineSettings(home=str(tmp_path), symbols=("BTC/USDT",), split=SPLIT))
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def()) as context:
            result = defs.resolve_sensor_def("token_drift")(context)
    assert not result.run_requests and not result.asset_events


def test_retrain_job_schedule_and_automation(tmp_path):
    defs = build_definitions(PipelineSettings(home=str(tmp_path)))
    schedule = defs.resolve_schedule_def("weekly_retrain")
    assert schedule.cron_schedule == "0 3 * * 0" and schedule.job_name == "retrain_models"
    job = defs.resolve_job_def("retrain_models")
    retrained = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    graph = defs.resolve_asset_graph()
    # every training asset (kind mlflow) and everything downstream of it, never the candles
    trained = {k.to_user_string() for k in graph.get_all_asset_keys() if "mlflow" in graph.get(k).kinds}
    assert {"tokenizer_model", "jepa_encoder", "multiverse_model"} <= trained <= retrained
    assert {"token_sequences", "jepa_embeddings", "multiverse_trajectories"} <= retrained
    assert "ohlcv_candles" not in retrained
    for name in ("token_sequences", "jepa_embeddings"):
        assert graph.get(dg.AssetKey(name)).automation_condition is not None
    assert defs.resolve_sensor_def("derived_assets").default_status == dg.DefaultSensorStatus.RUNNING
