"""The champion gate of ``multiverse_model``: promoted to ``@champion`` only if its validation CRPS beats the best
baseline of its own run (``fin_ia_models.multiverse.promotion.BaselineGate``) and is not worse than the champion's."""

import dagster as dg

from fin_ia_models.multiverse.promotion import BaselineGate, promote_if_beats_baselines
from fin_ia_models.tracking.registry import Gate
from fin_ia_pipeline.tracking.resource import MlflowResource

GATE_HORIZON = 24  # candles: the 24 h targets (every profile scores this horizon)
BASELINE_GATES = [BaselineGate(f"crps_ret_{GATE_HORIZON}c"), BaselineGate(f"crps_rv_{GATE_HORIZON}c")]
CHAMPION_GATES = [Gate(f"val_multiverse_crps_ret_{GATE_HORIZON}c", higher_is_better=False, tolerance=0.02),
                  Gate(f"val_multiverse_crps_rv_{GATE_HORIZON}c", higher_is_better=False, tolerance=0.02)]


def build_multiverse_gate(asset_key: dg.AssetKey) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset_key, name="champion_gate",
                    description="Promote this version to @champion if its validation CRPS of the 24 h return and "
                    "realized vol is below the best baseline's (block bootstrap, GARCH(1,1)-t, random walk) of the "
                    "same run, and not more than 2 % worse than the current champion's.")
    def champion_gate(context: dg.AssetCheckExecutionContext, mlflow: MlflowResource) -> dg.AssetCheckResult:
        event = context.instance.get_latest_materialization_event(asset_key)
        meta = {} if event is None else event.asset_materialization.metadata
        if "mlflow_model_version" not in meta:
            return dg.AssetCheckResult(passed=False, metadata={"reason": "no registered model version to gate"})
        name, version = meta["mlflow_model_name"].value, meta["mlflow_model_version"].value
        decision = promote_if_beats_baselines(mlflow.tracking_uri, name, version, BASELINE_GATES, CHAMPION_GATES)
        context.log.info(f"{name} v{version}: {'promoted to @champion' if decision.promoted else 'kept out'} "
                         f"({decision.reason})")
        return dg.AssetCheckResult(passed=decision.promoted, severity=dg.AssetCheckSeverity.WARN,
                                   metadata={"model": f"{name}/{version}", "reason": decision.reason,
                                             "previous_champion": decision.champion_version or "none"})

    return champion_gate
