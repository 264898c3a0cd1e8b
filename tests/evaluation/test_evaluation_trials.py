"""Trial count and Sharpe values read from a real sqlite MLflow store: finished and deleted runs count, failed and
running ones are reported apart, a finished run without the metric is an error."""

from __future__ import annotations

import numpy as np
import pytest

from fin_ia_models.evaluation.sharpe_inference import deflated_sharpe_from_returns
from fin_ia_models.tracking.trials import trial_sharpes

# creating a fresh sqlite MLflow store runs its schema migrations: 5-12 s on the shared CPU, before any test runs
pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    agents = client.create_experiment("fin-ia-agents", artifact_location=(root / "a").as_uri())
    sweep = client.create_experiment("fin-ia-agents-sweep", artifact_location=(root / "b").as_uri())
    broken = client.create_experiment("fin-ia-broken", artifact_location=(root / "c").as_uri())

    def run(experiment, status, value=None, delete=False):
        created = client.create_run(experiment)
        run_id = created.info.run_id
        if value is not None:
            client.log_metric(run_id, "val_sharpe", value)
        if status != "RUNNING":
            client.set_terminated(run_id, status)
        if delete:
            client.delete_run(run_id)
        return run_id

    ids = {
        "a": run(agents, "FINISHED", 0.5), "b": run(agents, "FINISHED", 1.2), "c": run(agents, "FINISHED", -0.3),
        "deleted": run(agents, "FINISHED", 2.0, delete=True), "failed": run(agents, "FAILED", 5.0),
        "running": run(agents, "RUNNING"), "sweep": run(sweep, "FINISHED", 0.7),
    }
    run(broken, "FINISHED", 0.1)
    ids["no_metric"] = run(broken, "FINISHED")
    return uri, ids


def test_every_finished_run_counts_and_unfinished_are_reported(store):
    uri, ids = store
    trials = trial_sharpes(uri, ["fin-ia-agents"], "val_sharpe")
    assert trials.n == 4 and trials.n_deleted == 1
    assert dict(zip(trials.run_ids, trials.values.tolist())) == {
        ids["a"]: 0.5, ids["b"]: 1.2, ids["c"]: -0.3, ids["deleted"]: 2.0}
    assert set(trials.unfinished_run_ids) == {ids["failed"], ids["running"]} and trials.n_unfinished == 2
    both = trial_sharpes(uri, ["fin-ia-agents", "fin-ia-agents-sweep"], "val_sharpe")
    assert both.n == 5 and sorted(both.values.tolist()) == [-0.3, 0.5, 0.7, 1.2, 2.0]
    # the DSR takes N and the variance from these values
    returns = np.random.default_rng(0).normal(1e-4, 0.01, 1000)
    dsr = deflated_sharpe_from_returns(returns, both.values, periods_per_year=8760)
    assert dsr.n_trials == 5 and dsr.trials_sharpe_variance == pytest.approx(np.var(both.values, ddof=1) / 8760)


def test_bad_experiments_are_errors(store):
    uri, ids = store
    with pytest.raises(ValueError, match="no MLflow experiment named 'nope'"):
        trial_sharpes(uri, ["nope"], "val_sharpe")
    with pytest.raises(ValueError, match=f"have no metric 'val_sharpe'.*{ids['no_metric']}"):
        trial_sharpes(uri, ["fin-ia-broken"], "val_sharpe")
    with pytest.raises(ValueError, match="non-empty list"):
        trial_sharpes(uri, "fin-ia-agents", "val_sharpe")
