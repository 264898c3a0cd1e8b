"""Validation-based model choice shared by the PPO and CVaR-planner trainers.

During training the current agent is run over the validation windows (``decide.evaluate_agent``: deterministic,
after costs, each window starting flat) every so often; the parameters with the best validation score are kept and
returned at the end, however training went on after them (early stopping by model choice, not by halting).
Scores: ``select_by = "sharpe"`` (annualised net Sharpe; a constant return series — an always-flat agent — has no
Sharpe and ranks below every defined one) or ``"net_reward"`` (sum of net log returns). A later evaluation replaces
the kept one only when strictly better, so ties keep the earlier (less trained) parameters.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, Callable

from fin_ia_models.agents.config import SELECT_BY, EnvConfig
from fin_ia_models.agents.data import AgentData
from fin_ia_models.agents.decide import TradingAgent, evaluate_agent

log = logging.getLogger("fin_ia.agents")

SCORE_KEY = {"sharpe": "val_sharpe", "net_reward": "val_net_reward"}


class ValidationSelector:
    """Evaluates agents on ``val`` and keeps the state (any picklable/tensor snapshot) of the best one."""

    def __init__(self, val: list[AgentData], config: EnvConfig, select_by: str) -> None:
        if not val:
            raise ValueError("model choice needs at least one validation window")
        if select_by not in SELECT_BY:
            raise ValueError(f"select_by must be one of {SELECT_BY}, got {select_by!r}")
        self.val, self.config, self.select_by = val, config, select_by
        self.best_scores: dict[str, float] | None = None  # the val_* scores of the kept state
        self.best_step: int | None = None
        self.best_state: Any = None

    def evaluate(self, agent: TradingAgent) -> dict[str, float]:
        """``val_``-prefixed scores of ``agent`` on the validation windows."""
        return {f"val_{k}": v for k, v in evaluate_agent(agent, self.val, self.config).items()}

    def rank(self, scores: dict[str, float]) -> float:
        value = scores[SCORE_KEY[self.select_by]]
        return -math.inf if math.isnan(value) else value

    def offer(self, scores: dict[str, float], step: int, snapshot: Callable[[], Any]) -> bool:
        """Keep ``snapshot()`` if ``scores`` beat the kept ones (or nothing is kept yet); True if kept."""
        if self.best_scores is not None and self.rank(scores) <= self.rank(self.best_scores):
            return False
        self.best_scores, self.best_step, self.best_state = dict(scores), step, copy.deepcopy(snapshot())
        return True

    def final_metrics(self) -> dict[str, float]:
        """The kept state's scores as ``best_val_*`` (distinct from the per-evaluation ``val_*`` history keys)."""
        if self.best_scores is None:
            raise RuntimeError("no validation evaluation ran: nothing to choose from")
        return {**{f"best_{k}": v for k, v in self.best_scores.items()}, "best_step": float(self.best_step)}

    def state_dict(self) -> dict[str, Any]:
        return {"best_scores": self.best_scores, "best_step": self.best_step, "best_state": self.best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_scores, self.best_step, self.best_state = (state["best_scores"], state["best_step"],
                                                              state["best_state"])
