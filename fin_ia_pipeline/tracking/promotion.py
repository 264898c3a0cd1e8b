"""Promotion as an asset check: after a model asset materializes, ``champion_gate`` compares its registered version
with the current ``champion`` on the stage's metric gates and moves the alias only if they pass. The decision and
both metric values are tagged on the version (see ``fin_ia_models.tracking.registry``) and shown on the check."""

import dagster as dg

from fin_ia_models.tracking.registry import Floor, Gate, promote_if_better
from fin_ia_models.world_model.probes import GATE_METRIC
from fin_ia_pipeline.tracking.resource import MlflowResource


def build_champion_gate(asset_key: dg.AssetKey, gates: list[Gate], floors: tuple[Floor, ...] = (), *,
                        decide=None, description: str | None = None) -> dg.AssetChecksDefinition:
    """The ``champion_gate`` check of a training asset. ``decide(tracking_uri, name, version) -> PromotionDecision``
    replaces the default rule (``promote_if_better`` on ``gates`` and ``floors``) for stages with their own, such as
    the multiverse's baselines; ``description`` then says what it checks."""
    described = ", ".join(f"{g.metric} ({'higher' if g.higher_is_better else 'lower'} is better, "
                          f"tolerance {g.tolerance:.0%})" for g in gates)
    required = "".join(f" Requires {f.metric} > {f.minimum:g} whatever the champion." for f in floors)
    description = description or (f"Promote this version to @champion if it is not worse than the champion on: "
                                   f"{described}.{required}")
    decide = decide or (lambda uri, name, version: promote_if_better(uri, name, version, gates, floors))

    @dg.asset_check(asset=asset_key, name="champion_gate", description=description)
    def champion_gate(context: dg.AssetCheckExecutionContext, mlflow: MlflowResource) -> dg.AssetCheckResult:
        event = context.instance.get_latest_materialization_event(asset_key)
        meta = {} if event is None else event.asset_materialization.metadata
        if "mlflow_model_version" not in meta:
            return dg.AssetCheckResult(passed=False, metadata={"reason": "no registered model version to gate"})
        name, version = meta["mlflow_model_name"].value, meta["mlflow_model_version"].value
        decision = decide(mlflow.tracking_uri, name, version)
        context.log.info(f"{name} v{version}: {'promoted to @champion' if decision.promoted else 'kept out'} "
                         f"({decision.reason})")
        values = {f"{m}_candidate": float(c) for m, (c, _) in decision.values.items()}
        values |= {f"{m}_champion": float(ch) for m, (_, ch) in decision.values.items() if ch is not None}
        return dg.AssetCheckResult(
            passed=decision.promoted,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"model": f"{name}/{version}", "reason": decision.reason,
                      "previous_champion": decision.champion_version or "none", **values},
        )

    return champion_gate


TOKENIZER_GATES = [Gate("utilization", higher_is_better=True, tolerance=0.02),
                   Gate("recon_mae", higher_is_better=False, tolerance=0.02)]
# the JEPA gate reads the VALIDATION window only (issue 12): the probe R² of next-24 h realized vol must beat the
# single feature "log realized vol of the last 24 h" there (absolute), and not fall below the champion's
JEPA_FLOORS = (Floor(GATE_METRIC, 0.0),)
JEPA_GATES = [Gate("val_probe_jepa_rv_r2", higher_is_better=True, tolerance=0.0)]
