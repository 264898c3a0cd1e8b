"""Strate IV and the evaluation stage end to end through Dagster on the synthetic market (real instance, real files,
real sqlite MLflow): the upstream chain as in tests/test_pipeline_multiverse.py, then ``ppo_agent``,
``cvar_planner_agent`` and ``backtest_report`` with its champion gates, with tiny budgets."""

from __future__ import annotations

import math

import dagster as dg
import numpy as np
import pytest

from fin_ia_models.agents.decide import agent_positions
from fin_ia_models.agents.planner import CVaRPlannerAgent
from fin_ia_models.agents.ppo_policy import PPOPolicy
from fin_ia_models.agents.stage import TRIAL_METRIC, agent_windows
from fin_ia_models.data.series import series_by_symbol
from fin_ia_models.data.sources.synthetic import SyntheticMarket, SyntheticMarketConfig
from fin_ia_models.evaluation.agent_gate import agent_gate_decision
from fin_ia_models.tracking.runs import load_registered_model
from fin_ia_pipeline.definitions import build_definitions
from fin_ia_pipeline.settings import PipelineSettings
from tests.test_pipeline_models import JEPA_RUN, SPLIT, SYMBOLS, TOKENIZER_RUN, load, meta, store_candles, window_days
from tests.test_pipeline_multiverse import MULTIVERSE_RUN

pytestmark = pytest.mark.slow  # trains the upstream chain, both agents and the report once: ~60 s on one core
PPO_RUN = {"ops": {"ppo_agent": {"config": {"total_timesteps": 1024}}}}
CVAR_RUN = {"ops": {"cvar_planner_agent": {"config": {"max_steps": 40, "eval_every_n_steps": 20}}}}
STRATEGIES = {"ppo_agent", "cvar_planner_agent", "flat", "buy_and_hold", "momentum_24h", "momentum_168h",
              "vol_target", "multiverse_mean"}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("agents")
    settings = PipelineSettings(home=str(tmp), symbols=SYMBOLS, split=SPLIT, start_date="2023-12-01")
    store_candles(settings, SyntheticMarket(SyntheticMarketConfig(seed=3)), window_days())
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        results = {}

        def mat(name, partition=None, run_config=None):
            result = dg.materialize(list(defs.assets) + list(defs.asset_checks or []), selection=[name],
                                    partition_key=partition, resources=defs.resources, instance=instance,
                                    run_config=run_config or {})
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
        mat("ppo_agent", run_config=PPO_RUN)
        mat("cvar_planner_agent", run_config=CVAR_RUN)
        mat("backtest_report")
        yield settings, defs, instance, results, mat


def stored_candles() -> dict:
    """The candles ``store_candles`` wrote (the same seeded market, day by day), per symbol."""
    from fin_ia_models.data.refresh import day_bounds_ms

    market = SyntheticMarket(SyntheticMarketConfig(seed=3))
    days = {(s, d): market.fetch(s, "1h", *day_bounds_ms(d)) for s in SYMBOLS for d in window_days()}
    return series_by_symbol(days)


def _client(settings):
    from mlflow import MlflowClient

    return MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)


@pytest.mark.parametrize("asset, model_name, cls", [("ppo_agent", "fin-ia-agent-ppo", PPOPolicy),
                                                    ("cvar_planner_agent", "fin-ia-agent-cvar", CVaRPlannerAgent)])
def test_agents_are_registered_with_lineage_curves_and_trial_counts(pipeline, asset, model_name, cls):
    settings, defs, instance, results, _ = pipeline
    m = meta(results[(asset, None)], asset)
    mv = meta(results[("multiverse_model", None)], "multiverse_model")
    jepa = meta(results[("jepa_encoder", None)], "jepa_encoder")
    tok = meta(results[("tokenizer_model", None)], "tokenizer_model")
    assert m["mlflow_model_name"] == model_name and m["profile"] == "demo"
    assert m["training_curve"].startswith("![training curve](data:image/png;base64,")
    assert m["validation_score"].startswith("Sharpe ") and np.isfinite(m["best_val_net_reward"])
    assert m["trials_so_far"] == (1 if asset == "ppo_agent" else 2)  # every agent run counts, both experiments
    assert m["multiverse_model"] == f"fin-ia-multiverse/{mv['mlflow_model_version']}"
    client = _client(settings)
    version = client.get_model_version(model_name, m["mlflow_model_version"])
    tags = version.tags
    assert tags["fin_ia.upstream.0.model"] == m["multiverse_model"]
    assert tags["fin_ia.upstream.0.run_id"] == mv["mlflow_run_id"]
    assert tags["fin_ia.upstream.1.model"] == f"fin-ia-jepa/{jepa['mlflow_model_version']}"
    assert tags["fin_ia.upstream.2.model"] == f"fin-ia-tokenizer/{tok['mlflow_model_version']}"
    assert str(client.get_model_version_by_alias(model_name, "candidate").version) == m["mlflow_model_version"]
    model = load_registered_model(settings.mlflow_tracking_uri, m["mlflow_model_uri"])
    assert isinstance(model, cls)
    assert TRIAL_METRIC in client.get_run(m["mlflow_run_id"]).data.metrics


def test_registered_agents_decide_as_loaded_by_the_pipeline(pipeline):
    settings, defs, instance, results, _ = pipeline
    embeddings = {s: load(defs, instance, "jepa_embeddings", s) for s in SYMBOLS}
    trajectories = {s: load(defs, instance, "multiverse_trajectories", s) for s in SYMBOLS}
    candles = stored_candles()
    windows = agent_windows(embeddings, trajectories, candles, SPLIT)
    ppo = load(defs, instance, "ppo_agent")
    again = load_registered_model(settings.mlflow_tracking_uri, meta(results[("ppo_agent", None)],
                                                                      "ppo_agent")["mlflow_model_uri"])
    data = windows["ETH/USDT"]["test"]
    positions = agent_positions(ppo, data)
    np.testing.assert_array_equal(agent_positions(again, data), positions)
    assert np.all(np.abs(positions) <= 1.0) and len(positions) == len(data)


def test_backtest_report_covers_every_strategy_and_logs_to_the_agent_runs(pipeline):
    settings, defs, instance, results, _ = pipeline
    m = meta(results[("backtest_report", None)], "backtest_report")
    frame = load(defs, instance, "backtest_report")
    assert set(frame["strategy"]) == STRATEGIES and set(frame["window"]) == {"val", "test"}
    assert m["n_trials"] == 2 and m["symbols"] == "BTC/USDT, ETH/USDT"
    for window in ("val", "test"):
        table = m[f"table_{window}"]
        assert table.startswith("| strategy | net Sharpe [95 % CI]") and all(f"| {s} |" in table for s in STRATEGIES)
        assert m[f"equity_drawdown_{window}"].startswith(f"![equity drawdown {window}](data:image/png;base64,")
        assert m[f"trades_{window}"]["flat"] == 0 and m[f"trades_{window}"]["buy_and_hold"] >= 2
    rows = frame.set_index(["window", "strategy"])
    assert math.isnan(rows.loc[("test", "flat"), "sharpe"])  # undefined, never a silent 0
    assert "constant" in rows.loc[("test", "flat"), "undefined"]
    buy_hold = rows.loc[("test", "buy_and_hold")]
    assert buy_hold["sharpe_lo"] <= buy_hold["sharpe"] <= buy_hold["sharpe_hi"]
    assert 0.0 <= buy_hold["psr"] <= 1.0 and math.isnan(buy_hold["dsr"])
    client = _client(settings)
    for asset in ("ppo_agent", "cvar_planner_agent"):
        agent_meta = meta(results[(asset, None)], asset)
        assert m[f"{asset}_model"] == f"{agent_meta['mlflow_model_name']}/{agent_meta['mlflow_model_version']}"
        metrics = client.get_run(agent_meta["mlflow_run_id"]).data.metrics
        assert metrics["test_bt_n_trials"] == 2 and "val_bt_buy_and_hold_sharpe" in metrics
        assert metrics["val_bt_trades"] == rows.loc[("val", asset), "trades"]
        artifacts = {a.path for a in client.list_artifacts(agent_meta["mlflow_run_id"], "backtest")}
        assert {"backtest/table_test.md", "backtest/equity_drawdown_val.png"} <= artifacts


def test_champion_gates_follow_the_validation_rule_and_tag_the_version(pipeline):
    settings, defs, instance, results, _ = pipeline
    evaluations = {e.check_name: e for e in results[("backtest_report", None)].get_asset_check_evaluations()}
    assert set(evaluations) == {"champion_gate_ppo_agent", "champion_gate_cvar_planner_agent"}
    client = _client(settings)
    for asset in ("ppo_agent", "cvar_planner_agent"):
        m = meta(results[(asset, None)], asset)
        metrics = client.get_run(m["mlflow_run_id"]).data.metrics
        expected, reason, _ = agent_gate_decision(metrics)
        evaluation = evaluations[f"champion_gate_{asset}"]
        assert evaluation.passed == expected  # synthetic data, two trials: the rule decides, usually "rejected"
        assert evaluation.metadata["reason"].value.startswith(reason)
        tags = client.get_model_version(m["mlflow_model_name"], m["mlflow_model_version"]).tags
        assert tags["fin_ia.promotion"] == ("promoted" if expected else "rejected")
        assert tags["fin_ia.promotion_reason"].startswith(reason)
        assert "fin_ia.agent_gate.dsr" in tags


def test_agent_assets_are_gpu_tagged_and_join_the_retrain_job(pipeline):
    settings, defs, instance, results, _ = pipeline
    graph = defs.resolve_asset_graph()
    retrained = defs.resolve_job_def("retrain_models").asset_layer.executable_asset_keys
    for name in ("ppo_agent", "cvar_planner_agent"):
        assert defs.resolve_assets_def(name).op.pool == "gpu" and graph.get(dg.AssetKey(name)).group_name == "agents"
        assert dg.AssetKey(name) in retrained
    assert graph.get(dg.AssetKey("backtest_report")).group_name == "evaluation"
    assert dg.AssetKey("backtest_report") in retrained
