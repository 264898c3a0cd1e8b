"""One MLflow run per trained artifact: params, metric history, system info, datasets, lineage tags, and the model
logged with the PyTorch flavour and registered as a new version of ``fin-ia-<stage>`` (alias ``candidate``)."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fin_ia_models.tracking.datasets import DatasetRef

CANDIDATE = "candidate"
CHAMPION = "champion"


@dataclass(frozen=True)
class UpstreamModel:
    """A registered model version a training run consumed."""

    name: str  # registered model name, e.g. fin-ia-tokenizer
    version: str
    run_id: str


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    experiment_id: str
    model_name: str
    version: str
    model_uri: str  # models:/<name>/<version>: what downstream stages load
    run_url: str  # the run in the MLflow UI


@dataclass(frozen=True)
class TrackingTarget:
    """Where runs go: a tracking URI (sqlite file, server URL) and, for a fresh local store, the artifact root."""

    tracking_uri: str
    artifact_root: str | None = None  # file:// or s3:// root for new experiments; None = the server's default
    ui_url: str = "http://127.0.0.1:5000"  # base URL of the MLflow UI that shows this store (for links)


def flatten(config, prefix: str = "") -> dict[str, str]:
    """Nested dataclasses/dicts → ``{"mixer.exo.enabled": "True", ...}`` (MLflow params are flat strings)."""
    values = asdict(config) if is_dataclass(config) else dict(config)
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if is_dataclass(value) or isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = str(value)
    return out


def git_commit(cwd: str | Path | None = None) -> str:
    """The project's git commit, or "unknown" outside a checkout (a container image built without .git)."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=cwd or Path(__file__).resolve().parents[2], timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def system_info(device: str, precision: str) -> dict[str, str]:
    import lightning
    import mlflow
    import torch

    return {
        "fin_ia.device": device, "fin_ia.precision": precision, "fin_ia.git_commit": git_commit(),
        "fin_ia.torch_version": torch.__version__, "fin_ia.lightning_version": lightning.__version__,
        "fin_ia.mlflow_version": mlflow.__version__, "fin_ia.python_version": platform.python_version(),
        "fin_ia.host": platform.node(),
    }


def _experiment_id(client, name: str, artifact_root: str | None) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None if artifact_root is None else f"{artifact_root.rstrip('/')}/{name}"
    return client.create_experiment(name, artifact_location=location)


def log_trained_model(
    target: TrackingTarget,
    *,
    experiment: str,
    model_name: str,
    model,
    params: Mapping[str, str],
    history: Sequence[Mapping[str, float]],
    final_metrics: Mapping[str, float],
    datasets: Sequence[DatasetRef],
    upstream: Sequence[UpstreamModel],
    tags: Mapping[str, str],
    input_example: np.ndarray,
    output_example: np.ndarray,
) -> LoggedModel:
    """Log one finished training as one run and register its model; returns ids for lineage and links."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(target.tracking_uri)
    mlflow.set_registry_uri(target.tracking_uri)
    client = MlflowClient(target.tracking_uri, target.tracking_uri)
    experiment_id = _experiment_id(client, experiment, target.artifact_root)
    lineage = {f"fin_ia.upstream.{i}.model": f"{u.name}/{u.version}" for i, u in enumerate(upstream)}
    lineage |= {f"fin_ia.upstream.{i}.run_id": u.run_id for i, u in enumerate(upstream)}
    with mlflow.start_run(experiment_id=experiment_id, tags={**tags, **lineage}) as run:
        mlflow.log_params(dict(params))
        for step, row in enumerate(history):
            mlflow.log_metrics({k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and np.isfinite(v)},
                               step=step)
        mlflow.log_metrics({k: float(v) for k, v in final_metrics.items() if np.isfinite(v)})
        for ref in datasets:
            frame = pd.DataFrame([{"symbols": ",".join(ref.symbols), "timeframe": ref.timeframe,
                                   "start_ms": ref.start_ms, "end_ms": ref.end_ms, "rows": ref.rows}])
            dataset = mlflow.data.from_pandas(frame, source=ref.source, name=ref.name, digest=ref.digest[:36])
            mlflow.log_input(dataset, context=ref.context, tags={**ref.tags(), "digest_sha256": ref.digest})
        info = mlflow.pytorch.log_model(
            model, name="model", registered_model_name=model_name,
            signature=infer_signature(input_example, output_example), input_example=input_example,
            pip_requirements=[f"torch=={_torch_version()}"],
            # pickle, not MLflow 3's default torch.export (pt2): our models return dataclasses and branch on
            # data (gaps, exo switch), which export cannot trace; loading needs fin_ia_models importable.
            serialization_format="pickle",
        )
        version = str(info.registered_model_version)
        run_id = run.info.run_id
    for key, value in {**tags, **lineage, "fin_ia.mlflow_run_id": run_id}.items():
        client.set_model_version_tag(model_name, version, key, value)
    client.set_registered_model_alias(model_name, CANDIDATE, version)
    url = f"{target.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return LoggedModel(run_id, experiment_id, model_name, version, f"models:/{model_name}/{version}", url)


def _torch_version() -> str:
    import torch

    return torch.__version__.split("+")[0]


def load_registered_model(tracking_uri: str, model_uri: str):
    """Load a registered PyTorch model (``models:/name/version`` or ``models:/name@alias``) onto the CPU."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return mlflow.pytorch.load_model(model_uri, map_location="cpu").eval()
