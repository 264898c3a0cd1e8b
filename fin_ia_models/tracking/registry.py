"""Registry promotion: ``champion`` moves to a ``candidate`` version only if its absolute floors pass (``Floor``:
e.g. "beats the single-feature baseline on validation") and its metric gates pass against the current champion;
the decision and the metric values are recorded as tags on the candidate version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fin_ia_models.tracking.runs import CHAMPION


@dataclass(frozen=True)
class Gate:
    """One metric a candidate must not be worse on than the champion (beyond ``tolerance``, relative)."""

    metric: str
    higher_is_better: bool
    tolerance: float = 0.0  # e.g. 0.02: 2 % worse is still accepted (noise between retrains)

    def passes(self, candidate: float, champion: float) -> bool:
        slack = abs(champion) * self.tolerance
        return candidate >= champion - slack if self.higher_is_better else candidate <= champion + slack


@dataclass(frozen=True)
class Floor:
    """An absolute bar, independent of any champion: the candidate's ``metric`` must be strictly above ``minimum``
    (a first version is refused too when it fails; "no champion yet" is no reason to promote a bad model)."""

    metric: str
    minimum: float = 0.0

    def passes(self, value: float) -> bool:
        return value > self.minimum


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    reason: str
    candidate_version: str
    champion_version: str | None  # the champion before the decision
    values: dict[str, tuple[float, float | None]]  # metric → (candidate, champion)


def _run_metrics(client, version) -> dict[str, float]:
    return client.get_run(version.run_id).data.metrics


def promote_if_better(tracking_uri: str, model_name: str, version: str, gates: list[Gate],
                      floors: Sequence[Floor] = ()) -> PromotionDecision:
    """Check ``version`` against every floor, then compare it to the current champion on every gate; move the alias
    only if all pass."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri, tracking_uri)
    candidate = client.get_model_version(model_name, version)
    try:
        champion = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        champion = None
    cand_metrics = _run_metrics(client, candidate)
    missing = [m for m in [*(g.metric for g in gates), *(f.metric for f in floors)] if m not in cand_metrics]
    if missing:
        raise ValueError(f"{model_name} v{version} has no metric(s) {missing} to gate on")
    champ_metrics = _run_metrics(client, champion) if champion is not None else {}
    values = {g.metric: (cand_metrics[g.metric], champ_metrics.get(g.metric)) for g in gates}
    below = [f"{f.metric} {cand_metrics[f.metric]:.6g} <= {f.minimum:g}" for f in floors
             if not f.passes(cand_metrics[f.metric])]
    for f in floors:
        client.set_model_version_tag(model_name, candidate.version, f"fin_ia.floor.{f.metric}",
                                     f"candidate={cand_metrics[f.metric]:.6g} minimum={f.minimum:g}")
    if below:
        promoted, reason = False, f"below the absolute floor: {'; '.join(below)}"
    elif champion is None:
        promoted, reason = True, "no champion yet"
    elif champion.version == candidate.version:
        promoted, reason = True, "already champion"
    else:
        failed = [g.metric for g in gates
                  if g.metric in champ_metrics and not g.passes(cand_metrics[g.metric], champ_metrics[g.metric])]
        promoted = not failed
        reason = "all gates pass" if promoted else f"worse than champion v{champion.version} on {', '.join(failed)}"
    decision = PromotionDecision(promoted, reason, str(candidate.version),
                                 None if champion is None else str(champion.version), values)
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, candidate.version)
    client.set_model_version_tag(model_name, candidate.version, "fin_ia.promotion", "promoted" if promoted else "rejected")
    client.set_model_version_tag(model_name, candidate.version, "fin_ia.promotion_reason", reason)
    for metric, (cand, champ) in values.items():
        client.set_model_version_tag(model_name, candidate.version, f"fin_ia.gate.{metric}",
                                     f"candidate={cand:.6g} champion={'none' if champ is None else f'{champ:.6g}'}")
    return decision
