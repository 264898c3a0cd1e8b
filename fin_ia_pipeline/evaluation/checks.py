"""The agents' champion gates, as checks of ``backtest_report`` (it produces the validation backtest they read):
``fin_ia_models.evaluation.agent_gate`` — validation net Sharpe above buy & hold and the best other baseline, DSR
>= 0.95, then not worse than the current champion; decision and reasons tagged on the model version."""

import dagster as dg

from fin_ia_models.evaluation.agent_gate import promote_agent_if_qualified
from fin_ia_pipeline.tracking.resource import MlflowResource


def build_agent_gate(report_key: dg.AssetKey, agent: str, model_name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=report_key, name=f"champion_gate_{agent}",
                    description=f"Promote the {model_name} version this report evaluated to @champion only if, on the "
                    "VALIDATION window, its net Sharpe beats buy & hold and the best other baseline and its deflated "
                    "Sharpe ratio (N = every agent training run in MLflow) is >= 0.95, and it is not worse than the "
                    "current champion. The test window is reported, never used to choose.")
    def champion_gate(context: dg.AssetCheckExecutionContext, mlflow: MlflowResource) -> dg.AssetCheckResult:
        event = context.instance.get_latest_materialization_event(report_key)
        meta = {} if event is None else event.asset_materialization.metadata
        key = f"{agent}_model"
        if key not in meta:
            return dg.AssetCheckResult(passed=False, metadata={"reason": f"the report evaluated no {agent}"})
        name, version = str(meta[key].value).rsplit("/", 1)
        decision = promote_agent_if_qualified(mlflow.tracking_uri, name, version)
        context.log.info(f"{name} v{version}: {'promoted to @champion' if decision.promoted else 'kept out'} "
                         f"({decision.reason})")
        return dg.AssetCheckResult(passed=decision.promoted, severity=dg.AssetCheckSeverity.WARN,
                                   metadata={"model": f"{name}/{version}", "reason": decision.reason,
                                             "previous_champion": decision.champion_version or "none"})

    return champion_gate
