"""Strate III assets end to end through Dagster on the synthetic market (real instance, real files, real sqlite MLflow):
tokenizer_model → token_sequences → jepa_encoder → jepa_embeddings → multiverse_model → multiverse_trajectories, with
tiny budgets (same pattern and split as tests/test_pipeline_models.py)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from fin_ia_models.data.schema import symbol_slug
from fin_ia_models.data.sources.synthetic import SyntheticMarket, SyntheticMarketConfig
from fin_ia_models.multiverse.promotion import baseline_gate_decision
from fin_ia_models.multiverse.trajectories import futures_from_frame
from fin_ia_models.tracking.lineage import resolve_lineage
from fin_ia_pipeline.definitions import build_definitions
from fin_ia_pipeline.multiverse.checks import BASELINE_GATES
from fin_ia_pipeline.settings import PipelineSettings
from tests.test_pipeline_models import JEPA_RUN, SPLIT, SYMBOLS, TOKENIZER_RUN, load, meta, store_candles, window_days

pytestmark = pytest.mark.slow  # trains the whole upstream chain and the multiverse once: ~35 s on one core
MULTIVERSE_RUN = {"ops": {"multiverse_model": {"config": {"epochs": 3, "n_eval_futures": 8}}}}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Candles stored, every upstream asset and both multiverse assets materialized once."""
    tmp = tmp_path_factory.mktemp("multiverse")
    settings = PipelineSettings(home=str(tmp), symbols=SYMBOLS, split=SPLIT, start_date="2023-12-01")
    store_candles(settings, SyntheticMarket(SyntheticMarketConfig(seed=3)), window_days())
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        results = {}

        def mat(name, partition=None, run_config=None, raise_on_error=True):
            result = dg.materialize(list(defs.assets) + list(defs.asset_checks or []), selection=[name],
                                    partition_key=partition, resources=defs.resources, instance=instance,
                                    run_config=run_config or {}, raise_on_error=raise_on_error)
            results[(name, partition)] = result
            return result

        mat("tokenizer_model", run_config=TOKENIZER_RUN)
        for symbol in SYMBOLS:
            mat("token_sequences", symbol)
        mat("jepa_encoder", run_config=JEPA_RUN)
        for symbol in SYMBOLS:
            mat("jepa_embeddings", symbol)
        mat("multiverse_model", run_config=MULTIVERSE_RUN)
        for symbol in SYMBOLS:
            mat("multiverse_trajectories", symbol)
        yield settings, defs, instance, results, mat


def test_multiverse_model_reports_validation_and_test_scores_against_baselines(pipeline):
    settings, defs, instance, results, _ = pipeline
    m = meta(results[("multiverse_model", None)], "multiverse_model")
    for window in ("val", "test"):
        for model in ("multiverse", "block_bootstrap", "garch_t", "random_walk"):
            for score in ("crps_ret", "crps_rv", "energy", "coverage_ret_90"):
                assert np.isfinite(m[f"{window}_{model}_{score}_24c"]), (window, model, score)
        assert np.isfinite(m[f"{window}_skill_crps_rv_24c"])
    assert m["predictor"] == "flow" and m["profile"] == "demo"
    assert m["val_window"] == "2024-02-16 … 2024-02-29" and m["train_contexts"] > 50
    for plot in ("loss_curve", "calibration_val", "pit_val", "fan_chart_test"):
        assert m[plot].startswith(f"![{plot.replace('_', ' ')}](data:image/png;base64,"), plot
    model = load(defs, instance, "multiverse_model")
    jepa = meta(results[("jepa_encoder", None)], "jepa_encoder")
    tok = meta(results[("tokenizer_model", None)], "tokenizer_model")
    assert model.config.jepa_version == f"fin-ia-jepa/{jepa['mlflow_model_version']}"
    assert model.config.tokenizer_version == f"fin-ia-tokenizer/{tok['mlflow_model_version']}"
    assert model.config.emb_dim == 64 and model.config.n_eval_futures == 8


def test_multiverse_lineage_tags_name_the_exact_jepa_and_tokenizer(pipeline):
    from mlflow import MlflowClient

    settings, defs, instance, results, _ = pipeline
    m = meta(results[("multiverse_model", None)], "multiverse_model")
    jepa = meta(results[("jepa_encoder", None)], "jepa_encoder")
    tok = meta(results[("tokenizer_model", None)], "tokenizer_model")
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    run = client.get_run(m["mlflow_run_id"])
    assert run.data.tags["fin_ia.upstream.0.model"] == f"fin-ia-jepa/{jepa['mlflow_model_version']}"
    assert run.data.tags["fin_ia.upstream.0.run_id"] == jepa["mlflow_run_id"]
    assert run.data.tags["fin_ia.upstream.1.model"] == f"fin-ia-tokenizer/{tok['mlflow_model_version']}"
    assert run.data.tags["fin_ia.dagster.asset_key"] == "multiverse_model"
    version = client.get_model_version("fin-ia-multiverse", m["mlflow_model_version"])
    assert version.run_id == m["mlflow_run_id"] and version.tags["fin_ia.upstream.0.model"].startswith("fin-ia-jepa/")
    assert str(client.get_model_version_by_alias("fin-ia-multiverse", "candidate").version) == \
        m["mlflow_model_version"]
    node = resolve_lineage(settings.mlflow_tracking_uri, f"fin-ia-multiverse/{m['mlflow_model_version']}")
    assert [u.name for u in node.upstream] == ["fin-ia-jepa", "fin-ia-tokenizer"]
    assert node.upstream[0].upstream[0].name == "fin-ia-tokenizer"  # JEPA → the same tokenizer
    contexts = {d.context: d for d in node.datasets}
    assert {"training", "targets_and_baselines"} <= set(contexts)
    inputs = {d.dataset.name for d in run.inputs.dataset_inputs}
    assert inputs == {"token_sequences", "jepa_embeddings", "ohlcv_candles"}


def test_trajectories_frame_holds_summaries_and_futures_for_every_usable_token(pipeline):
    settings, defs, instance, results, _ = pipeline
    tokens = load(defs, instance, "token_sequences", "ETH/USDT")
    frame = load(defs, instance, "multiverse_trajectories", "ETH/USDT")
    model = load(defs, instance, "multiverse_model")
    assert len(frame) == len(tokens) - (model.config.context_tokens - 1)
    assert frame["end_timestamp"].tolist() == tokens["end_timestamp"].tolist()[model.config.context_tokens - 1:]
    for h in (16, 24):
        for target in ("ret", "rv"):
            q05, q50, q95 = (frame[f"{target}_{h}c_q{q}"] for q in ("05", "50", "95"))
            assert (q05 <= q50).all() and (q50 <= q95).all() and (frame[f"{target}_{h}c_std"] > 0).all()
    assert (frame["rv_24c_q05"] > 0).all()
    ids, steps = futures_from_frame(frame)
    assert ids.shape == steps.shape == (len(frame), 8, 3) and np.isfinite(steps).all()
    m = meta(results[("multiverse_trajectories", "ETH/USDT")], "multiverse_trajectories")
    assert m["rows"] == len(frame) and m["n_futures"] == 8
    assert np.isfinite(m["test_multiverse_crps_ret_24c"]) and np.isfinite(m["test_garch_t_crps_rv_24c"])
    assert m["calibration_test"].startswith("![calibration test](data:image/png;base64,")
    assert m["fan_chart_test"].startswith("![fan chart test](data:image/png;base64,")
    mv = meta(results[("multiverse_model", None)], "multiverse_model")
    assert m["multiverse_model"] == f"fin-ia-multiverse/{mv['mlflow_model_version']}"
    assert m["jepa_model"] == model.config.jepa_version


def test_trajectories_are_reproducible(pipeline):
    settings, defs, instance, results, mat = pipeline
    before = load(defs, instance, "multiverse_trajectories", "BTC/USDT")
    mat("multiverse_trajectories", "BTC/USDT")
    after = load(defs, instance, "multiverse_trajectories", "BTC/USDT")
    assert before.drop(columns=["future_token", "future_step_ret"]).equals(
        after.drop(columns=["future_token", "future_step_ret"]))
    np.testing.assert_array_equal(np.stack(before["future_step_ret"]), np.stack(after["future_step_ret"]))


def test_champion_gate_follows_the_baseline_rule(pipeline):
    from mlflow import MlflowClient

    settings, defs, instance, results, _ = pipeline
    job = dg.define_asset_job("gate", selection=dg.AssetSelection.checks(
        dg.AssetCheckKey(dg.AssetKey("multiverse_model"), "champion_gate")))
    result = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("gate").execute_in_process(
        instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    m = meta(results[("multiverse_model", None)], "multiverse_model")
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    metrics = client.get_run(m["mlflow_run_id"]).data.metrics
    expected, reason, _ = baseline_gate_decision(metrics, BASELINE_GATES)
    assert evaluation.passed == expected  # synthetic data: either outcome is possible; the rule decides it
    tags = client.get_model_version("fin-ia-multiverse", m["mlflow_model_version"]).tags
    assert tags["fin_ia.promotion"] == ("promoted" if expected else "rejected")
    assert tags["fin_ia.baseline_gate.crps_ret_24c"].startswith("multiverse=")
    assert evaluation.metadata["reason"].value.startswith(reason)


def test_gpu_tagging_and_group(pipeline):
    settings, defs, instance, results, _ = pipeline
    graph = defs.resolve_asset_graph()
    for name in ("multiverse_model", "multiverse_trajectories"):
        spec = defs.resolve_assets_def(name)
        assert spec.op.pool == "gpu", name
        k8s = spec.op.tags["dagster-k8s/config"]
        k8s = json.loads(k8s) if isinstance(k8s, str) else k8s
        assert k8s["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert graph.get(dg.AssetKey(name)).group_name == "multiverse"
    assert "mlflow" in defs.resolve_assets_def("multiverse_model").specs_by_key[
        dg.AssetKey("multiverse_model")].kinds
    assert dg.AssetKey("multiverse_model") in defs.resolve_job_def("retrain_models").asset_layer.executable_asset_keys


# Last: retrains Fin-JEPA and re-embeds one symbol, which the tests above must not see.
def test_inputs_from_another_jepa_version_are_refused_and_nothing_is_written(pipeline):
    settings, defs, instance, results, mat = pipeline
    path = Path(settings.storage_root) / "frames" / "multiverse_trajectories" / f"{symbol_slug('BTC/USDT')}.parquet"
    before = path.read_bytes()
    mat("jepa_encoder", run_config=JEPA_RUN)  # a new Fin-JEPA version …
    mat("jepa_embeddings", "BTC/USDT")  # … re-embeds BTC only
    failed = mat("multiverse_trajectories", "BTC/USDT", raise_on_error=False)
    assert not failed.success
    message = failed.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert "made by Fin-JEPA 'fin-ia-jepa/2', but this multiverse was trained on Fin-JEPA 'fin-ia-jepa/1'" in message
    assert path.read_bytes() == before  # the stored futures were not touched
    retrain = mat("multiverse_model", run_config=MULTIVERSE_RUN, raise_on_error=False)
    assert not retrain.success  # ETH's embeddings still come from the old Fin-JEPA: refused, not mixed
    message = retrain.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert "jepa_embeddings [ETH/USDT] was made by {'jepa_model': 'fin-ia-jepa/1'}" in message
