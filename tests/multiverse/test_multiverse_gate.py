"""The multiverse's champion gate, both outcomes: the pure baseline rule on hand-made metrics, and the promotion of
registered versions in a real sqlite MLflow store (reject below the baseline, promote above it, then the usual
comparison with the champion)."""

from __future__ import annotations

import pytest

from fin_ia_models.multiverse.promotion import BaselineGate, baseline_gate_decision, promote_if_beats_baselines
from fin_ia_models.tracking.registry import Gate

GATES = [BaselineGate("crps_ret_24c"), BaselineGate("crps_rv_24c")]
CHAMPION = [Gate("val_multiverse_crps_ret_24c", higher_is_better=False, tolerance=0.02)]


def metrics(mv_ret: float, mv_rv: float) -> dict[str, float]:
    out = {"val_multiverse_crps_ret_24c": mv_ret, "val_multiverse_crps_rv_24c": mv_rv}
    for name, ret, rv in (("block_bootstrap", 1.3, 0.9), ("garch_t", 1.2, 0.5), ("random_walk", 1.5, 2.0)):
        out |= {f"val_{name}_crps_ret_24c": ret, f"val_{name}_crps_rv_24c": rv}
    return out


def test_baseline_rule_both_ways_and_margin():
    passed, reason, values = baseline_gate_decision(metrics(1.1, 0.45), GATES)
    assert passed and reason == "beats the best baseline on crps_ret_24c, crps_rv_24c"
    assert values == {"crps_ret_24c": (1.1, 1.2), "crps_rv_24c": (0.45, 0.5)}
    passed, reason, _ = baseline_gate_decision(metrics(1.1, 0.55), GATES)
    assert not passed and reason == "does not beat the best baseline on crps_rv_24c 0.55 vs garch_t 0.5"
    passed, _, _ = baseline_gate_decision(metrics(1.1, 0.45), [BaselineGate("crps_rv_24c", margin=0.15)])
    assert not passed  # 10 % better is not the 15 % asked for
    with pytest.raises(ValueError, match=r"no metric\(s\) \['val_multiverse_crps_rv_16c'"):
        baseline_gate_decision(metrics(1.1, 0.45), [BaselineGate("crps_rv_16c")])
    with pytest.raises(ValueError, match="never read the test window"):
        BaselineGate("crps_ret_24c", window="test")


def _register(client, name: str, values: dict[str, float]) -> str:
    import mlflow
    from mlflow.exceptions import MlflowException

    experiment = client.create_experiment(f"exp-{len(client.search_experiments())}")
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_metrics(values)
    try:
        client.get_registered_model(name)
    except MlflowException:  # first version: the registered model does not exist yet
        client.create_registered_model(name)
    return str(client.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
               .version)


def test_promotion_in_a_real_registry(tmp_path):
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri, uri)
    name = "fin-ia-multiverse"
    worse = _register(client, name, metrics(1.25, 0.45))  # loses to GARCH-t on the return
    decision = promote_if_beats_baselines(uri, name, worse, GATES, CHAMPION)
    assert not decision.promoted and "crps_ret_24c 1.25 vs garch_t 1.2" in decision.reason
    assert client.get_model_version(name, worse).tags["fin_ia.promotion"] == "rejected"
    with pytest.raises(MlflowException, match="alias"):
        client.get_model_version_by_alias(name, "champion")
    better = _register(client, name, metrics(1.1, 0.45))
    decision = promote_if_beats_baselines(uri, name, better, GATES, CHAMPION)
    assert decision.promoted and decision.reason.endswith("no champion yet")
    assert str(client.get_model_version_by_alias(name, "champion").version) == better
    # beats the baselines but is > 2 % worse than the champion: kept out by the champion comparison
    slip = _register(client, name, metrics(1.15, 0.45))
    decision = promote_if_beats_baselines(uri, name, slip, GATES, CHAMPION)
    assert not decision.promoted and "worse than champion" in decision.reason
    assert str(client.get_model_version_by_alias(name, "champion").version) == better
