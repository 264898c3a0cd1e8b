"""Count the trials behind a selected strategy from MLflow: every run of the given experiments, for the deflated Sharpe
ratio's N and the variance of the trials' Sharpe ratios (Bailey & López de Prado 2014; ``evaluation/sharpe_inference``).

Which runs count (multiple-testing honesty: a trial is something that was tried, whatever became of it):
- FINISHED runs count, promoted or not, and so do DELETED ones (deleting a run does not un-try it); their latest value
  of ``metric`` is returned. A FINISHED run without the metric is an error naming the run: either the experiment holds
  runs that are not trials, or a trial lost its score — both must be fixed, not silently skipped.
- FAILED, KILLED, RUNNING and SCHEDULED runs have no complete out-of-sample score, so they give no value; they are
  reported (count and run ids) beside the values, so a caller can see N would be larger if they were retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrialMetrics:
    values: np.ndarray  # (N,) the metric of every finished run (deleted ones included)
    run_ids: tuple[str, ...]  # (N,) the runs behind ``values``, in the same order
    n_deleted: int  # how many of the N runs are deleted in MLflow
    unfinished_run_ids: tuple[str, ...]  # FAILED / KILLED / RUNNING / SCHEDULED runs, not in ``values``

    @property
    def n(self) -> int:
        """N, the trial count for the DSR."""
        return len(self.values)

    @property
    def n_unfinished(self) -> int:
        return len(self.unfinished_run_ids)


def trial_sharpes(tracking_uri: str, experiment_names: Sequence[str], metric: str) -> TrialMetrics:
    """``metric`` (e.g. the annualised validation Sharpe) of every run in ``experiment_names``."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    if isinstance(experiment_names, str) or not experiment_names:
        raise ValueError(f"experiment_names must be a non-empty list of names, got {experiment_names!r}")
    client = MlflowClient(tracking_uri, tracking_uri)
    experiment_ids = []
    for name in experiment_names:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise ValueError(f"no MLflow experiment named {name!r} at {tracking_uri}")
        experiment_ids.append(experiment.experiment_id)

    runs, page_token = [], None
    while True:  # every page: search_runs returns at most max_results runs at a time
        page = client.search_runs(experiment_ids, run_view_type=ViewType.ALL, max_results=1000,
                                  order_by=["attributes.start_time ASC"], page_token=page_token)
        runs.extend(page)
        page_token = page.token
        if not page_token:
            break

    values, run_ids, unfinished, missing, deleted = [], [], [], [], 0
    for run in runs:
        if run.info.status != "FINISHED":
            unfinished.append(run.info.run_id)
        elif metric not in run.data.metrics:
            missing.append(run.info.run_id)
        else:
            values.append(run.data.metrics[metric])
            run_ids.append(run.info.run_id)
            deleted += run.info.lifecycle_stage == "deleted"
    if missing:
        raise ValueError(f"{len(missing)} finished run(s) in {list(experiment_names)} have no metric {metric!r}: "
                         f"{missing[:5]}")
    values_arr = np.asarray(values, np.float64)
    if not np.isfinite(values_arr).all():
        bad = [r for r, v in zip(run_ids, values) if not np.isfinite(v)]
        raise ValueError(f"metric {metric!r} is not finite in run(s) {bad[:5]}")
    return TrialMetrics(values_arr, tuple(run_ids), int(deleted), tuple(unfinished))
