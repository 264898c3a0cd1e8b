"""``backtest_report``: one asset over ALL symbols (not partitioned: the agents trade every symbol as one
equal-capital book, and the DSR deflates that book's Sharpe), group ``evaluation``.

Every registered agent candidate (the versions the agent assets last materialized: alias ``candidate``) and every
baseline run through the same backtest engine on the validation window (which the champion gates read) and the test
window (reported, never used to choose). Bodies only wire: the work is ``fin_ia_models.evaluation.agent_report``."""


import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd

from fin_ia_pipeline.agents.assets import AGENT_STAGES, agent_trials
from fin_ia_pipeline.agents.inputs import chain_versions
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tracking.resource import MlflowResource

EVALUATION = "evaluation"
WINDOWS = ("val", "test")
N_BOOT = {"demo": 200, "cpu": 1000, "full": 2000}  # bootstrap resamples per interval


def env_costs(agents: dict):
    """The ``CostConfig`` every agent was trained with (they must agree: one book, one cost model)."""
    from fin_ia_models.evaluation.backtest import CostConfig

    costs = {}
    for name, agent in agents.items():
        env = agent.config.env if hasattr(agent.config, "env") else agent.config.planner.env
        costs[name] = CostConfig(env.fee_bps, env.slippage_bps)
    if len(set(costs.values())) > 1:
        raise ValueError(f"agents were trained with different costs {costs}: backtest them separately")
    return next(iter(costs.values()))


def log_to_agent_run(tracking_uri: str, run_id: str, metrics: dict[str, float], files: dict[str, bytes]) -> None:
    """The report's numbers as metrics of the agent's own training run, and its table/plots as artifacts."""
    from fin_ia_models.tracking.runs import mlflow_client

    client = mlflow_client(tracking_uri)
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            path = Path(tmp) / name
            path.write_bytes(data)
            client.log_artifact(run_id, str(path), artifact_path="backtest")


def build_evaluation_assets(settings: PipelineSettings) -> list[dg.AssetsDefinition]:
    all_candles = dg.AssetIn(key=dg.AssetKey("ohlcv_candles"), metadata={"allow_missing_partitions": True})

    @dg.asset(
        group_name=EVALUATION,
        ins={**{name: dg.AssetIn() for name in AGENT_STAGES}, "jepa_embeddings": dg.AssetIn(),
             "multiverse_trajectories": dg.AssetIn(), "ohlcv_candles": all_candles},
        io_manager_key="frame_io_manager",
        code_version="1",
        kinds={"pandas"},
        description="One asset over all symbols (one equal-capital book): every agent candidate and every baseline "
        "(flat, buy & hold, momentum 24 h / 7 d, vol targeting, the multiverse's mean signal) backtested after 10 + 5 "
        "bps costs on the validation and test windows; metrics table, PSR, DSR with N = every agent training run in "
        "MLflow, stationary-bootstrap CIs, equity and drawdown plot, trades; the same logged to each agent's run.",
    )
    def backtest_report(context: dg.AssetExecutionContext, mlflow: MlflowResource, ppo_agent, cvar_planner_agent,
                        jepa_embeddings: dict, multiverse_trajectories: dict, ohlcv_candles: dict) -> dg.Output:
        from fin_ia_models.agents.stage import agent_windows
        from fin_ia_models.data.series import series_by_symbol
        from fin_ia_models.evaluation.agent_report import agents_report
        from fin_ia_models.evaluation.plots import markdown_image

        agents = {"ppo_agent": ppo_agent, "cvar_planner_agent": cvar_planner_agent}
        chain_versions(context.instance, multiverse_trajectories)  # one consistent upstream chain, or an error
        candles = series_by_symbol(ohlcv_candles)
        windows = agent_windows(jepa_embeddings, multiverse_trajectories, candles, settings.time_split())
        trials = agent_trials(mlflow.tracking_uri)
        context.log.info(f"DSR trials: {trials.n} agent training runs in MLflow"
                         + (f" ({trials.n_unfinished} unfinished, not counted)" if trials.n_unfinished else ""))
        costs = env_costs(agents)
        report = agents_report(agents, windows, candles, settings.time_split(), costs, trials.values,
                               n_boot=N_BOOT[settings.profile], seed=settings.seed, names=WINDOWS)
        meta: dict = {"symbols": ", ".join(windows), "n_trials": trials.n,
                      "costs_bps": costs.fee_bps + costs.slippage_bps, "summary": report.summary(trials.n)}
        for window in WINDOWS:
            context.log.info(f"{window} window:\n{report.tables[window]}")
            meta[f"table_{window}"] = dg.MetadataValue.md(report.tables[window])
            meta[f"equity_drawdown_{window}"] = dg.MetadataValue.md(
                markdown_image(report.plots[window], f"equity drawdown {window}"))
            meta[f"trades_{window}"] = dg.MetadataValue.json(report.trades(window))
        files = {**{f"table_{w}.md": t.encode() for w, t in report.tables.items()},
                 **{f"equity_drawdown_{w}.png": p for w, p in report.plots.items()}}
        for name, agent in agents.items():
            lineage = agent.fin_ia_lineage
            log_to_agent_run(mlflow.tracking_uri, lineage.run_id, report.agent_metrics[name], files)
            meta |= {f"{name}_model": f"{lineage.name}/{lineage.version}", f"{name}_run_id": lineage.run_id}
        return dg.Output(pd.DataFrame(report.rows), metadata=meta)

    return [backtest_report]
