"""MLflow tracking against a real sqlite store: runs, registered versions, aliases, promotion gates, lineage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fin_ia_models.tracking.datasets import dataset_ref, frames_digest
from fin_ia_models.tracking.lineage import LineageError, format_lineage, parse_model_spec, resolve_lineage
from fin_ia_models.tracking.registry import Floor, Gate, promote_if_better
from fin_ia_models.tokenizer.config import TokenizerConfig
from fin_ia_models.tokenizer.model import TokenizerModel
from fin_ia_models.tracking.runs import (SHA_TAG, TrackingTarget, UpstreamModel, flatten, load_registered_model,
                                         log_trained_model)
from fin_ia_models.training.result import TrainingResult
from tests.conftest import make_candles


@pytest.fixture()
def target(tmp_path) -> TrackingTarget:
    return TrackingTarget(f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "artifacts").as_uri())


TINY = TokenizerConfig(quantizer="fsq", hidden_dim=8, latent_dim=4, n_layers=4)


def tiny_model(seed: int = 0) -> TokenizerModel:
    torch.manual_seed(seed)
    return TokenizerModel(TINY).eval()


def log_tiny(target, name, metrics, upstream=(), frames=None):
    model = tiny_model()
    frames = frames or {"TEST/USDT": make_candles(24)}
    x = np.zeros((1, TINY.patch_len, TINY.n_features), np.float32)
    result = TrainingResult(model, TINY, 0, history=[{"loss": 1.0}, {"loss": 0.5}], metrics=metrics,
                            datasets=[dataset_ref("ohlcv_candles", frames, "timestamp", "1h", "/data/ohlcv_candles")],
                            input_example=x, output_example=model.encode(torch.as_tensor(x))[0].numpy())
    return log_trained_model(target, experiment=name, model_name=name, kind="tokenizer", result=result,
                             params=flatten({"a": {"b": 1}, "c": 2}), upstream=list(upstream),
                             tags={"fin_ia.dagster.run_id": "run-123"})


def test_digest_depends_on_values_only():
    a = {"BTC/USDT": make_candles(24)}
    b = {"BTC/USDT": make_candles(24).copy().reset_index(drop=True)}
    assert frames_digest(a) == frames_digest(b)
    b["BTC/USDT"].loc[5, "close"] += 1e-9
    assert frames_digest(a) != frames_digest(b)
    assert frames_digest({"X": make_candles(24)}) != frames_digest({"Y": make_candles(24)})


def test_flatten_nested_params():
    assert flatten({"a": {"b": 1, "c": {"d": True}}, "e": "x"}) == {"a.b": "1", "a.c.d": "True", "e": "x"}


def test_one_run_one_version_candidate_alias_and_loadable(target):
    from mlflow import MlflowClient

    logged = log_tiny(target, "fin-ia-test", {"score": 0.5})
    client = MlflowClient(target.tracking_uri, target.tracking_uri)
    assert logged.version == "1" and logged.model_uri == "models:/fin-ia-test/1"
    assert str(client.get_model_version_by_alias("fin-ia-test", "candidate").version) == "1"
    run = client.get_run(logged.run_id)
    assert run.data.params["a.b"] == "1" and run.data.metrics["score"] == 0.5
    assert run.data.tags["fin_ia.dagster.run_id"] == "run-123"
    (inp,) = run.inputs.dataset_inputs
    tags = {t.key: t.value for t in inp.tags}
    assert tags["digest_sha256"] == frames_digest({"TEST/USDT": make_candles(24)}) and tags["timeframe"] == "1h"
    model = load_registered_model(target.tracking_uri, logged.model_uri)
    for name, tensor in tiny_model().state_dict().items():  # the logged weights come back bit for bit
        assert torch.equal(model.state_dict()[name], tensor), name
    assert client.get_model_version("fin-ia-test", "1").tags[SHA_TAG] == logged.sha256
    # MLflow 3's UI shows the experiment as model training (runs, metrics, models), not its GenAI view
    assert client.get_experiment(logged.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"


def test_promotion_moves_champion_only_when_the_gate_passes(target):
    from mlflow import MlflowClient

    client = MlflowClient(target.tracking_uri, target.tracking_uri)
    gates = [Gate("score", higher_is_better=True), Gate("error", higher_is_better=False, tolerance=0.1)]
    v1 = log_tiny(target, "fin-ia-gate", {"score": 0.5, "error": 1.0})
    first = promote_if_better(target.tracking_uri, "fin-ia-gate", v1.version, gates)
    assert first.promoted and first.reason == "no champion yet"
    worse = log_tiny(target, "fin-ia-gate", {"score": 0.4, "error": 0.9})
    rejected = promote_if_better(target.tracking_uri, "fin-ia-gate", worse.version, gates)
    assert not rejected.promoted and "score" in rejected.reason
    assert str(client.get_model_version_by_alias("fin-ia-gate", "champion").version) == "1"
    tags = client.get_model_version("fin-ia-gate", worse.version).tags
    assert tags["fin_ia.promotion"] == "rejected" and tags["fin_ia.gate.score"] == "candidate=0.4 champion=0.5"
    better = log_tiny(target, "fin-ia-gate", {"score": 0.6, "error": 1.05})  # error within 10 % tolerance
    accepted = promote_if_better(target.tracking_uri, "fin-ia-gate", better.version, gates)
    assert accepted.promoted and accepted.champion_version == "1"
    assert str(client.get_model_version_by_alias("fin-ia-gate", "champion").version) == better.version
    # old versions stay loadable
    assert isinstance(load_registered_model(target.tracking_uri, "models:/fin-ia-gate/1"), TokenizerModel)


def test_jepa_floor_refuses_a_version_that_loses_to_the_single_feature_baseline(target):
    """Issue 12: the ``jepa_encoder`` gate (the pipeline's own JEPA_FLOORS/JEPA_GATES) refuses a version whose
    validation probe does not beat the single-feature baseline, even with no champion yet and even when it is
    better than the champion; a version that beats it is promoted."""
    from mlflow import MlflowClient

    from fin_ia_models.world_model.probes import GATE_METRIC
    from fin_ia_pipeline.tracking.promotion import JEPA_FLOORS, JEPA_GATES

    client = MlflowClient(target.tracking_uri, target.tracking_uri)
    name = "fin-ia-jepa-floor"
    losing = log_tiny(target, name, {GATE_METRIC: -0.05, "val_probe_jepa_rv_r2": 0.30})
    first = promote_if_better(target.tracking_uri, name, losing.version, JEPA_GATES, JEPA_FLOORS)
    assert not first.promoted and "absolute floor" in first.reason and GATE_METRIC in first.reason
    with pytest.raises(Exception):  # no alias was set
        client.get_model_version_by_alias(name, "champion")
    tags = client.get_model_version(name, losing.version).tags
    assert tags["fin_ia.promotion"] == "rejected" and tags[f"fin_ia.floor.{GATE_METRIC}"].startswith("candidate=-0.05")
    tie = log_tiny(target, name, {GATE_METRIC: 0.0, "val_probe_jepa_rv_r2": 0.31})  # equal is not beating
    assert not promote_if_better(target.tracking_uri, name, tie.version, JEPA_GATES, JEPA_FLOORS).promoted
    winning = log_tiny(target, name, {GATE_METRIC: 0.02, "val_probe_jepa_rv_r2": 0.35})
    accepted = promote_if_better(target.tracking_uri, name, winning.version, JEPA_GATES, JEPA_FLOORS)
    assert accepted.promoted and accepted.reason == "no champion yet"
    assert str(client.get_model_version_by_alias(name, "champion").version) == winning.version
    # better than the champion on R² but below the floor: still refused, the champion stays
    sneaky = log_tiny(target, name, {GATE_METRIC: -0.01, "val_probe_jepa_rv_r2": 0.50})
    assert not promote_if_better(target.tracking_uri, name, sneaky.version, JEPA_GATES, JEPA_FLOORS).promoted
    assert str(client.get_model_version_by_alias(name, "champion").version) == winning.version
    assert Floor("m", 0.0).passes(1e-9) and not Floor("m", 0.0).passes(0.0)


def test_gate_on_a_missing_metric_is_an_error(target):
    v = log_tiny(target, "fin-ia-gate2", {"score": 1.0})
    with pytest.raises(ValueError, match="no metric"):
        promote_if_better(target.tracking_uri, "fin-ia-gate2", v.version, [Gate("absent", True)])


def test_lineage_resolves_upstream_models_and_datasets(target):
    up = log_tiny(target, "fin-ia-up", {"score": 1.0})
    down = log_tiny(target, "fin-ia-down", {"score": 1.0},
                    upstream=[UpstreamModel("fin-ia-up", up.version, up.run_id)])
    node = resolve_lineage(target.tracking_uri, f"fin-ia-down/{down.version}")
    assert node.upstream[0].name == "fin-ia-up" and node.upstream[0].run_id == up.run_id
    assert node.datasets[0].name == "ohlcv_candles" and node.dagster_run_id == "run-123"
    text = format_lineage(node)
    assert "fin-ia-down v1" in text and "fin-ia-up v1" in text and "TEST/USDT 1h 2024-01-01 00:00" in text
    assert resolve_lineage(target.tracking_uri, "fin-ia-down@candidate").version == down.version
    with pytest.raises(LineageError, match="no registered model 'nope'"):
        resolve_lineage(target.tracking_uri, "nope")
    with pytest.raises(LineageError, match="no alias @gold"):
        resolve_lineage(target.tracking_uri, "fin-ia-down@gold")


def test_model_spec_parsing():
    assert parse_model_spec("fin-ia-jepa") == ("fin-ia-jepa", None, None)
    assert parse_model_spec("fin-ia-jepa@champion") == ("fin-ia-jepa", "champion", None)
    assert parse_model_spec("fin-ia-jepa/3") == ("fin-ia-jepa", None, "3")
    with pytest.raises(LineageError):
        parse_model_spec("a/b/c")
