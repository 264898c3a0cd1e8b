"""The agents' champion gate: the pure rule (validation net Sharpe above buy & hold and the best other baseline, DSR
>= 0.95; undefined values fail and say which) and both outcomes on a real sqlite MLflow registry, tags included."""

from __future__ import annotations

import pytest

from fin_ia_models.evaluation.agent_gate import AgentGate, agent_gate_decision, promote_agent_if_qualified

GOOD = {"val_bt_sharpe": 2.0, "val_bt_buy_and_hold_sharpe": 1.0, "val_bt_best_other_baseline_sharpe": 1.5,
        "val_bt_dsr": 0.97, "test_bt_sharpe": -5.0}


def test_the_rule_both_ways_and_every_reason():
    passed, reason, values = agent_gate_decision(GOOD)
    assert passed and reason.startswith("val: net Sharpe 2 beats buy & hold") and values["dsr"] == 0.97
    cases = {"val_bt_buy_and_hold_sharpe": (2.5, "<= buy & hold 2.5"),
             "val_bt_best_other_baseline_sharpe": (2.0, "<= best other baseline 2"),
             "val_bt_dsr": (0.949, "DSR 0.949 < 0.95")}
    for key, (value, words) in cases.items():
        passed, reason, _ = agent_gate_decision({**GOOD, key: value})
        assert not passed and words in reason, (key, reason)
    passed, reason, _ = agent_gate_decision({k: v for k, v in GOOD.items() if k != "val_bt_dsr"})
    assert not passed and "undefined on val: val_bt_dsr" in reason
    with pytest.raises(ValueError, match="never read the test window"):
        AgentGate(window="test")


def _registered(tmp_path, metrics: dict) -> tuple[str, str]:
    """A registered version of ``fin-ia-agent-ppo`` whose run holds ``metrics`` (real sqlite store)."""
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    experiment = client.get_experiment_by_name("fin-ia-agent-ppo") or None
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(
        "fin-ia-agent-ppo", artifact_location=(tmp_path / "artifacts").as_uri())
    run = client.create_run(experiment_id)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(f"name = 'fin-ia-agent-ppo'"):
        client.create_registered_model("fin-ia-agent-ppo")
    mv = client.create_model_version("fin-ia-agent-ppo", f"{run.info.artifact_uri}/model", run.info.run_id)
    mlflow.set_tracking_uri(uri)
    return uri, str(mv.version)


def test_both_outcomes_on_a_sqlite_registry(tmp_path):
    from mlflow import MlflowClient

    uri, rejected = _registered(tmp_path, {**GOOD, "val_bt_dsr": 0.5})
    decision = promote_agent_if_qualified(uri, "fin-ia-agent-ppo", rejected)
    client = MlflowClient(uri, uri)
    tags = client.get_model_version("fin-ia-agent-ppo", rejected).tags
    assert not decision.promoted and tags["fin_ia.promotion"] == "rejected"
    assert tags["fin_ia.promotion_reason"] == "val: DSR 0.500 < 0.95" and tags["fin_ia.agent_gate.dsr"] == "0.5"
    assert not client.get_registered_model("fin-ia-agent-ppo").aliases  # nobody became champion

    _, promoted = _registered(tmp_path, GOOD)
    decision = promote_agent_if_qualified(uri, "fin-ia-agent-ppo", promoted)
    tags = client.get_model_version("fin-ia-agent-ppo", promoted).tags
    assert decision.promoted and tags["fin_ia.promotion"] == "promoted"
    assert "beats buy & hold" in tags["fin_ia.promotion_reason"] and "no champion yet" in decision.reason
    assert str(client.get_model_version_by_alias("fin-ia-agent-ppo", "champion").version) == promoted

    _, worse = _registered(tmp_path, {**GOOD, "val_bt_sharpe": 1.8})  # qualifies, but below the champion's 2.0
    decision = promote_agent_if_qualified(uri, "fin-ia-agent-ppo", worse)
    assert not decision.promoted and "worse than champion" in decision.reason
    assert str(client.get_model_version_by_alias("fin-ia-agent-ppo", "champion").version) == promoted
