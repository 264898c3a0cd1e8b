"""Strate I and II assets end to end through Dagster on the synthetic market (real instance, real files).

Candle partitions are written straight into the candle store (the candle asset has its own tests), then the
learned assets are materialized with tiny budgets: tokenizer_model → token_sequences → jepa_encoder →
jepa_embeddings. The split is shortened so the whole chain runs in well under a minute on a CPU.
"""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import torch

from fin_ia_models.config import TimeSplit
from fin_ia_models.data.refresh import day_bounds_ms
from fin_ia_models.data.sources.synthetic import SyntheticMarket, SyntheticMarketConfig
from fin_ia_models.data.storage import write_candles_parquet
from fin_ia_models.tracking.lineage import resolve_lineage
from fin_ia_pipeline.definitions import build_definitions
from fin_ia_models.data.series import series_by_symbol
from fin_ia_pipeline.market_data.resources import CandleStoreResource
from fin_ia_pipeline.settings import PipelineSettings

SPLIT = TimeSplit(train_start="2024-01-01", train_end="2024-02-15", val_start="2024-02-16", val_end="2024-02-29",
                  test_start="2024-03-01", test_end="2024-03-20", embargo_hours=24)
SYMBOLS = ("BTC/USDT", "ETH/USDT")
TOKENIZER_RUN = {"ops": {"tokenizer_model": {"config": {"epochs": 2}}}}
JEPA_RUN = {"ops": {"jepa_encoder": {"config": {"max_steps": 8, "seq_len": 32}}}}


def store_candles(settings: PipelineSettings, market, days) -> None:
    store = CandleStoreResource(root=settings.storage_root, timeframe=settings.timeframe)
    for symbol in settings.symbols:
        for day in days:
            start, end = day_bounds_ms(day)
            write_candles_parquet(market.fetch(symbol, settings.timeframe, start, end), store.path(symbol, day).path)


def window_days() -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(SPLIT.train_start, SPLIT.test_end, freq="D")]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Settings, definitions and an instance with candles stored and every learned asset materialized once."""
    tmp = tmp_path_factory.mktemp("models")
    settings = PipelineSettings(home=str(tmp), symbols=SYMBOLS, split=SPLIT, start_date="2023-12-01")
    store_candles(settings, SyntheticMarket(SyntheticMarketConfig(seed=3)), window_days())
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        results = {}

        def mat(name, partition=None, run_config=None):
            result = dg.materialize(list(defs.assets), selection=[name], partition_key=partition,
                                    resources=defs.resources, instance=instance, run_config=run_config or {})
            results[(name, partition)] = result
            return result

        mat("tokenizer_model", run_config=TOKENIZER_RUN)
        for symbol in SYMBOLS:
            mat("token_sequences", symbol)
        mat("jepa_encoder", run_config=JEPA_RUN)
        for symbol in SYMBOLS:
            mat("jepa_embeddings", symbol)
        yield settings, defs, instance, results, mat


def meta(result, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


def load(defs, instance, asset, partition=None):
    with defs.get_asset_value_loader(instance=instance) as loader:
        return loader.load_asset_value(asset, partition_key=partition)


def test_tokenizer_model_reports_held_out_metrics_and_plots(pipeline):
    settings, defs, instance, results, _ = pipeline
    m = meta(results[("tokenizer_model", None)], "tokenizer_model")
    assert m["quantizer"] == "fsq" and m["test_window"] == "2024-03-01 … 2024-03-20"
    assert 0 < m["utilization"] <= 1 and m["perplexity"] >= 1 and m["recon_mae"] > 0
    assert m["test_patches"] > 0 and m["train_patches"] > m["test_patches"]
    assert m["codebook_usage"].startswith("![codebook usage](data:image/png;base64,")
    assert m["loss_curve"].startswith("![loss curve](data:image/png;base64,")
    model = load(defs, instance, "tokenizer_model")
    assert model.codebook_size == 1024


def test_token_sequences_cover_the_stored_series(pipeline):
    settings, defs, instance, results, _ = pipeline
    frame = load(defs, instance, "token_sequences", "BTC/USDT")
    assert list(frame.columns[:2]) == ["end_timestamp", "token"]
    assert frame["end_timestamp"].is_monotonic_increasing and frame["token"].between(0, 1023).all()
    latents = [c for c in frame.columns if c.startswith("latent_")]
    assert latents and frame[latents].notna().all().all()
    n_candles = len(window_days()) * 24
    assert n_candles // 16 - 3 <= len(frame) <= n_candles // 16  # warm-up of the volume window drops the first ones
    assert meta(results[("token_sequences", "BTC/USDT")], "token_sequences")["rows"] == len(frame)


def test_jepa_encoder_reports_probes_and_collapse_stats(pipeline):
    settings, defs, instance, results, _ = pipeline
    m = meta(results[("jepa_encoder", None)], "jepa_encoder")
    for key in ("probe_jepa_rv_r2", "probe_raw_rv_r2", "probe_single_rv_r2", "probe_jepa_sign_auc",
                "probe_raw_sign_accuracy", "val_probe_jepa_rv_r2", "val_jepa_minus_single_rv_r2",
                "final_collapse_effective_rank", "final_collapse_std_min", "final_loss"):
        assert np.isfinite(m[key]), key
    assert m["exo_clock"] is True and m["steps"] == 8
    assert m["final_collapse_effective_rank"] > 1.0


def test_jepa_embeddings_align_with_tokens(pipeline):
    settings, defs, instance, results, _ = pipeline
    tokens = load(defs, instance, "token_sequences", "ETH/USDT")
    emb = load(defs, instance, "jepa_embeddings", "ETH/USDT")
    assert emb["end_timestamp"].tolist() == tokens["end_timestamp"].tolist()
    assert emb.filter(like="emb_").shape[1] == 64 and np.isfinite(emb.filter(like="emb_").to_numpy()).all()


def test_gpu_assets_are_tagged_and_cpu_assets_are_not(pipeline):
    settings, defs, instance, results, _ = pipeline
    graph = defs.resolve_asset_graph()
    for name in ("tokenizer_model", "token_sequences", "jepa_encoder", "jepa_embeddings"):
        spec = defs.resolve_assets_def(name)
        assert spec.op.pool == "gpu", name
        k8s = spec.op.tags["dagster-k8s/config"]
        k8s = json.loads(k8s) if isinstance(k8s, str) else k8s  # Dagster stores dict tags as JSON
        limits = k8s["container_config"]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == "1"
    candles = defs.resolve_assets_def("ohlcv_candles")
    assert candles.op.pool is None and "dagster-k8s/config" not in candles.op.tags
    assert graph.get(dg.AssetKey("token_sequences")).group_name == "tokenizer"
    assert graph.get(dg.AssetKey("jepa_embeddings")).group_name == "world_model"


def test_tokenizer_refuses_when_windows_are_empty(tmp_path):
    settings = PipelineSettings(home=str(tmp_path), symbols=("BTC/USDT",), split=SPLIT, start_date="2023-12-01")
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        with pytest.raises(Exception, match="Materialize those ohlcv_candles partitions first"):
            dg.materialize(list(defs.assets), selection=["tokenizer_model"], resources=defs.resources,
                           instance=instance, run_config=TOKENIZER_RUN)


def test_each_training_asset_logged_one_run_and_one_version(pipeline):
    from mlflow import MlflowClient

    settings, defs, instance, results, _ = pipeline
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    for asset, name in (("tokenizer_model", "fin-ia-tokenizer"), ("jepa_encoder", "fin-ia-jepa")):
        m = meta(results[(asset, None)], asset)
        versions = client.search_model_versions(f"name='{name}'")
        runs = client.search_runs([client.get_experiment_by_name(name).experiment_id])
        assert len(runs) >= 1 and m["mlflow_run_id"] in {r.info.run_id for r in runs}
        version = client.get_model_version(name, m["mlflow_model_version"])
        assert version.run_id == m["mlflow_run_id"] and len(versions) >= 1
        run = client.get_run(m["mlflow_run_id"])
        assert run.data.tags["fin_ia.dagster.asset_key"] == asset
        assert run.data.tags["fin_ia.dagster.run_id"] == results[(asset, None)].run_id
        assert run.data.tags["fin_ia.device"] == "cpu" and run.data.tags["fin_ia.torch_version"]
        assert m["mlflow_run_url"].startswith("http://127.0.0.1:5000/#/experiments/")


def test_jepa_lineage_resolves_to_the_tokenizer_it_used_and_the_candles(pipeline, capsys):
    from fin_ia_models.tracking.datasets import frames_digest
    from fin_ia_pipeline.cli import main

    settings, defs, instance, results, _ = pipeline
    tok = meta(results[("tokenizer_model", None)], "tokenizer_model")
    jepa = meta(results[("jepa_encoder", None)], "jepa_encoder")
    seq = meta(results[("token_sequences", "BTC/USDT")], "token_sequences")
    assert seq["tokenizer_model_version"] == tok["mlflow_model_version"]
    node = resolve_lineage(settings.mlflow_tracking_uri, f"fin-ia-jepa/{jepa['mlflow_model_version']}")
    assert [(u.name, u.version, u.run_id) for u in node.upstream] == [
        ("fin-ia-tokenizer", tok["mlflow_model_version"], tok["mlflow_run_id"])]
    tok_node = node.upstream[0]
    train_candles = next(d for d in tok_node.datasets if d.context == "training")
    assert train_candles.tags["symbols"] == "BTC/USDT,ETH/USDT" and train_candles.tags["timeframe"] == "1h"
    # the digest is recomputable from the stored candles of the training window
    store = CandleStoreResource(root=settings.storage_root, timeframe="1h")
    parts = {f"{day}|{symbol}": store.read(symbol, day) for symbol in SYMBOLS for day in window_days()}
    start, _ = SPLIT.range_ms("train")
    _, end = SPLIT.range_ms("val")
    assert train_candles.digest == frames_digest(series_by_symbol(parts, start, end))
    assert main(["lineage", f"fin-ia-jepa/{jepa['mlflow_model_version']}",
                 "--tracking-uri", settings.mlflow_tracking_uri]) == 0
    out = capsys.readouterr().out
    assert f"fin-ia-jepa v{jepa['mlflow_model_version']}" in out and f"fin-ia-tokenizer v{tok['mlflow_model_version']}" in out
    assert "ohlcv_candles: BTC/USDT,ETH/USDT 1h 2024-01-01 00:00" in out
    assert main(["lineage", "fin-ia-nothing", "--tracking-uri", settings.mlflow_tracking_uri]) == 2


def test_rematerializing_adds_a_version_with_identical_weights_and_digests(pipeline):
    from mlflow import MlflowClient

    from fin_ia_models.tracking.runs import load_registered_model

    settings, defs, instance, results, mat = pipeline
    first = meta(results[("tokenizer_model", None)], "tokenizer_model")
    second = meta(mat("tokenizer_model", run_config=TOKENIZER_RUN), "tokenizer_model")
    assert int(second["mlflow_model_version"]) > int(first["mlflow_model_version"])
    old = load_registered_model(settings.mlflow_tracking_uri, first["mlflow_model_uri"])
    new = load_registered_model(settings.mlflow_tracking_uri, second["mlflow_model_uri"])
    for key, value in old.state_dict().items():
        assert torch.equal(value, new.state_dict()[key]), key  # same seed + same candles → same weights on CPU
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    digests = [{t.key: t.value for t in di.tags}["digest_sha256"]
               for run_id in (first["mlflow_run_id"], second["mlflow_run_id"])
               for di in client.get_run(run_id).inputs.dataset_inputs]
    assert digests[:2] == digests[2:]


def test_champion_gate_applies_the_validation_floor_to_the_first_version(pipeline):
    """The first JEPA version is promoted only if its validation probe beats the single-feature baseline (issue 12;
    both outcomes are tested deterministically in tests/test_tracking.py); here the real asset's decision must follow
    its own logged metric."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from fin_ia_models.world_model.probes import GATE_METRIC

    settings, defs, instance, results, _ = pipeline
    job = dg.define_asset_job("gate", selection=dg.AssetSelection.checks(
        dg.AssetCheckKey(dg.AssetKey("jepa_encoder"), "champion_gate")))
    result = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("gate").execute_in_process(
        instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    jepa = meta(results[("jepa_encoder", None)], "jepa_encoder")
    margin = client.get_run(jepa["mlflow_run_id"]).data.metrics[GATE_METRIC]
    assert np.isfinite(margin)
    if margin > 0:
        assert evaluation.passed and evaluation.metadata["reason"].value == "no champion yet"
        assert str(client.get_model_version_by_alias("fin-ia-jepa", "champion").version) == \
            jepa["mlflow_model_version"]
    else:
        assert not evaluation.passed and "absolute floor" in evaluation.metadata["reason"].value
        with pytest.raises(MlflowException):
            client.get_model_version_by_alias("fin-ia-jepa", "champion")


def test_new_candles_trigger_the_derived_assets_of_that_symbol_despite_missing_history(pipeline):
    """Automation through Dagster's own evaluation API: after a new candle day of BTC lands, token_sequences and
    jepa_embeddings of BTC (only) are requested, although most historical candle days were never materialized."""
    settings, defs, instance, results, _ = pipeline
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0  # everything derived is up to date
    instance.report_runless_asset_event(dg.AssetMaterialization("ohlcv_candles", partition="2024-03-20|BTC/USDT"))
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    for name in ("token_sequences", "jepa_embeddings"):
        assert second.get_requested_partitions(dg.AssetKey(name)) == {"BTC/USDT"}, name
    third = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
    assert third.total_requested == 0  # requested once, not on every tick


# Last: it rewrites stored candles, which the lineage and reproducibility tests above must not see.
def test_embeddings_are_causal_through_the_assets(pipeline):
    """Rewrite every candle after a cut time with a different market, re-materialize the derived assets with the same
    models: tokens and embeddings ending at or before the cut are unchanged, later ones change."""
    settings, defs, instance, results, mat = pipeline
    before_tok = load(defs, instance, "token_sequences", "BTC/USDT")
    before_emb = load(defs, instance, "jepa_embeddings", "BTC/USDT")
    days = window_days()
    cut_day = days[len(days) // 2]
    store_candles(settings, SyntheticMarket(SyntheticMarketConfig(seed=99)), [d for d in days if d >= cut_day])
    mat("token_sequences", "BTC/USDT")
    mat("jepa_embeddings", "BTC/USDT")
    after_tok = load(defs, instance, "token_sequences", "BTC/USDT")
    after_emb = load(defs, instance, "jepa_embeddings", "BTC/USDT")
    cut = day_bounds_ms(cut_day)[0]  # candles opening at/after the cut changed
    for before, after in ((before_tok, after_tok), (before_emb, after_emb)):
        b, a = before.set_index("end_timestamp"), after.set_index("end_timestamp")
        past = b.index[b.index < cut]
        future = b.index[(b.index >= cut) & b.index.isin(a.index)]
        assert len(past) > 10 and len(future) > 10
        pd.testing.assert_frame_equal(a.loc[past], b.loc[past])  # bit-identical history
        assert not np.allclose(a.loc[future].to_numpy(np.float64), b.loc[future].to_numpy(np.float64))
