"""The multiverse's champion gate: a candidate must first beat the best simple forecaster OF ITS OWN RUN on the
validation window, then not be worse than the current champion (``tracking.registry.promote_if_better``).

``tracking.registry.Gate`` compares a candidate with the champion's value of the same metric; it cannot say "lower
than the best of these other metrics of the same run". ``BaselineGate`` adds that: for a score such as
``crps_ret_24c`` (lower is better) it reads ``{window}_multiverse_{score}`` and ``{window}_{baseline}_{score}`` from
the candidate's run (the names ``fit_multiverse`` logs) and passes when the multiverse is below the best baseline by
at least ``margin`` (relative). ``baseline_gate_decision`` is the pure rule (unit-tested both ways);
``promote_if_beats_baselines`` applies it to a registered version and records the decision as version tags.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fin_ia_models.tracking.registry import Gate, PromotionDecision, promote_if_better

BASELINES = ("block_bootstrap", "garch_t", "random_walk")


@dataclass(frozen=True)
class BaselineGate:
    """The multiverse's ``score`` (lower is better) must be below the best baseline's by ``margin`` (relative)."""

    score: str  # e.g. "crps_ret_24c"
    window: str = "val"  # the window that chooses: never the test window
    baselines: tuple[str, ...] = BASELINES
    margin: float = 0.0  # 0.05 = at least 5 % lower than the best baseline; 0 = strictly lower

    def __post_init__(self) -> None:
        if not 0.0 <= self.margin < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {self.margin}")
        if self.window == "test":
            raise ValueError("a gate must never read the test window (it is reported, not used to choose)")

    def values(self, metrics: Mapping[str, float]) -> tuple[float, str, float]:
        """(multiverse score, best baseline name, its score) from a run's metrics."""
        wanted = [f"{self.window}_multiverse_{self.score}"] + [f"{self.window}_{b}_{self.score}"
                                                                for b in self.baselines]
        missing = [name for name in wanted if name not in metrics]
        if missing:
            raise ValueError(f"the run has no metric(s) {missing} to gate on")
        best = min(self.baselines, key=lambda b: metrics[f"{self.window}_{b}_{self.score}"])
        return float(metrics[wanted[0]]), best, float(metrics[f"{self.window}_{best}_{self.score}"])


def baseline_gate_decision(metrics: Mapping[str, float], gates: Sequence[BaselineGate]) -> tuple[bool, str, dict]:
    """(passed, reason, {score: (multiverse, best baseline)}) of ``gates`` on one run's metrics."""
    failed, values = [], {}
    for gate in gates:
        model, best_name, best = gate.values(metrics)
        values[gate.score] = (model, best)
        if not model < best * (1.0 - gate.margin):
            failed.append(f"{gate.score} {model:.6g} vs {best_name} {best:.6g}")
    if failed:
        return False, "does not beat the best baseline on " + "; ".join(failed), values
    return True, "beats the best baseline on " + ", ".join(g.score for g in gates), values


def promote_if_beats_baselines(tracking_uri: str, model_name: str, version: str,
                               baseline_gates: Sequence[BaselineGate],
                               champion_gates: Sequence[Gate]) -> PromotionDecision:
    """Apply the baseline gates to ``version``'s run; only if they pass, the champion comparison may promote it.
    A rejection is tagged on the version (``fin_ia.promotion`` = rejected, with the reason and values)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri, tracking_uri)
    candidate = client.get_model_version(model_name, version)
    metrics = client.get_run(candidate.run_id).data.metrics
    passed, reason, values = baseline_gate_decision(metrics, baseline_gates)
    for score, (model, best) in values.items():
        client.set_model_version_tag(model_name, version, f"fin_ia.baseline_gate.{score}",
                                     f"multiverse={model:.6g} best_baseline={best:.6g}")
    if not passed:
        client.set_model_version_tag(model_name, version, "fin_ia.promotion", "rejected")
        client.set_model_version_tag(model_name, version, "fin_ia.promotion_reason", reason)
        return PromotionDecision(False, reason, str(version), None, {})
    decision = promote_if_better(tracking_uri, model_name, version, list(champion_gates))
    return PromotionDecision(decision.promoted, f"{reason}; {decision.reason}", decision.candidate_version,
                             decision.champion_version, decision.values)
