"""The agents' champion gate (issue 11): a candidate becomes ``@champion`` only if, on the VALIDATION window, its net
Sharpe beats buy & hold and the best other baseline and its deflated Sharpe ratio is >= 0.95; then it must also not
be worse than the current champion on validation net Sharpe (``tracking.registry.promote_if_better``).

The inputs are the ``val_bt_*`` metrics the backtest report logged to the candidate's run
(``agent_report.agent_run_metrics``); the test window is reported, never read here. ``agent_gate_decision`` is the
pure rule (tested both ways); ``promote_agent_if_qualified`` applies it to a registered version and tags the decision
and its reasons on the version (``fin_ia.promotion``, ``fin_ia.promotion_reason``, ``fin_ia.agent_gate.*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fin_ia_models.tracking.registry import Gate, PromotionDecision, promote_if_better

WINDOW = "val"
CHAMPION_GATES = [Gate(f"{WINDOW}_bt_sharpe", higher_is_better=True, tolerance=0.0)]


@dataclass(frozen=True)
class AgentGate:
    min_dsr: float = 0.95  # the threshold: 95 % confidence that the Sharpe is not a best-of-N fluke
    window: str = WINDOW

    def __post_init__(self) -> None:
        if self.window == "test":
            raise ValueError("a gate must never read the test window (it is reported, not used to choose)")


def agent_gate_decision(metrics: Mapping[str, float], gate: AgentGate = AgentGate()) -> tuple[bool, str, dict]:
    """(passed, reason, values) of the rule on one run's metrics. A missing value (undefined: e.g. an agent that never
    traded has no Sharpe, fewer than 2 trials give no DSR) fails the gate and says which."""
    p = f"{gate.window}_bt_"
    names = {"sharpe": f"{p}sharpe", "buy_and_hold": f"{p}buy_and_hold_sharpe",
             "best_other_baseline": f"{p}best_other_baseline_sharpe", "dsr": f"{p}dsr"}
    values = {k: metrics.get(name) for k, name in names.items()}
    missing = [names[k] for k, v in values.items() if v is None]
    if missing:
        return False, f"undefined on {gate.window}: {', '.join(missing)} (not logged: no Sharpe or < 2 trials)", values
    failed = []
    if not values["sharpe"] > values["buy_and_hold"]:
        failed.append(f"net Sharpe {values['sharpe']:.3g} <= buy & hold {values['buy_and_hold']:.3g}")
    if not values["sharpe"] > values["best_other_baseline"]:
        failed.append(f"net Sharpe {values['sharpe']:.3g} <= best other baseline {values['best_other_baseline']:.3g}")
    if not values["dsr"] >= gate.min_dsr:
        failed.append(f"DSR {values['dsr']:.3f} < {gate.min_dsr}")
    if failed:
        return False, f"{gate.window}: " + "; ".join(failed), values
    return True, (f"{gate.window}: net Sharpe {values['sharpe']:.3g} beats buy & hold and the best other baseline, "
                  f"DSR {values['dsr']:.3f} >= {gate.min_dsr}"), values


def promote_agent_if_qualified(tracking_uri: str, model_name: str, version: str,
                               gate: AgentGate = AgentGate()) -> PromotionDecision:
    """Apply ``agent_gate_decision`` to ``version``'s run; only if it passes may the champion comparison promote it.
    Every outcome is tagged on the version."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri, tracking_uri)
    candidate = client.get_model_version(model_name, version)
    metrics = client.get_run(candidate.run_id).data.metrics
    passed, reason, values = agent_gate_decision(metrics, gate)
    for key, value in values.items():
        client.set_model_version_tag(model_name, version, f"fin_ia.agent_gate.{key}",
                                     "undefined" if value is None else f"{value:.6g}")
    if not passed:
        client.set_model_version_tag(model_name, version, "fin_ia.promotion", "rejected")
        client.set_model_version_tag(model_name, version, "fin_ia.promotion_reason", reason)
        return PromotionDecision(False, reason, str(version), None, {})
    decision = promote_if_better(tracking_uri, model_name, version, CHAMPION_GATES)
    reason = f"{reason}; {decision.reason}"
    client.set_model_version_tag(model_name, version, "fin_ia.promotion_reason", reason)  # both halves of the why
    return PromotionDecision(decision.promoted, reason, decision.candidate_version,
                             decision.champion_version, decision.values)
