"""``DecisionEngine.from_registry``: the agent's lineage gives the exact stack, SHA-checked, on a real sqlite MLflow."""

from __future__ import annotations

import numpy as np
import pytest

from fin_ia_models.live.engine import DecisionEngine
from fin_ia_models.live.registry import StackError, load_stack
from fin_ia_models.tracking.runs import TrackingTarget, UpstreamModel, log_trained_model
from fin_ia_models.training.result import TrainingResult
from tests.live.conftest import register_stacks, tiny_planner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registry(tmp_path_factory, market):
    root = tmp_path_factory.mktemp("mlflow")
    target = TrackingTarget(f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri())
    return target, register_stacks(target, market)


def test_champion_alias_loads_its_lineage_and_decides(registry, market):
    target, specs = registry
    engine = DecisionEngine.from_registry("fin-ia-agent-cvar@champion", target.tracking_uri)
    assert engine.versions == {"agent": specs[0], "multiverse": "fin-ia-multiverse/1", "jepa": "fin-ia-jepa/1",
                               "tokenizer": "fin-ia-tokenizer/1"}
    decisions = engine.run("TEST/USDT", market.iloc[:16 * 30])
    assert sum(d.event == "decide" for d in decisions) > 5
    assert decisions[-1].versions["agent"] == specs[0]
    candidate = DecisionEngine.from_registry("fin-ia-agent-cvar@candidate", target.tracking_uri)
    assert candidate.versions["agent"] == specs[1] != specs[0]
    other = candidate.run("TEST/USDT", market.iloc[:16 * 30])
    assert [d.position for d in other] != [d.position for d in decisions]  # two agents, two decision lines
    np.testing.assert_equal([d.mv_mean for d in other], [d.mv_mean for d in decisions])  # one shared multiverse


def test_an_agent_without_a_multiverse_upstream_is_refused(registry):
    target, _ = registry
    result = TrainingResult(tiny_planner((16, 4, 4)), None, 0, history=[], metrics={})
    result.config = result.model.config
    log_trained_model(target, experiment="orphan", model_name="fin-ia-agent-orphan", kind="cvar_planner",
                      result=result, upstream=[UpstreamModel("fin-ia-tokenizer", "1", "x")], tags={}, params={})
    with pytest.raises(StackError, match="no multiverse in the lineage"):
        load_stack(target.tracking_uri, "fin-ia-agent-orphan@candidate")
