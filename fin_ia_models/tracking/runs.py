"""One MLflow run per trained artifact: started before training and ended after it, with params, metric history,
system info, datasets, lineage tags, and the model registered as a new version of ``fin-ia-<stage>`` (alias
``candidate``).

The model is stored as plain artifacts in the one fin-ia checkpoint format (``model/model.safetensors``: tensors and
a JSON config, no pickle; ``fin_ia_models.training.checkpoint``) and registered with ``create_model_version``. The
file's SHA-256 is tagged on the version (``fin_ia.artifact_sha256``) and verified before every load, so a file
replaced in the artifact store is refused instead of loaded.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CANDIDATE = "candidate"
CHAMPION = "champion"
MODEL_DIR = "model"  # artifact folder of the registered model inside its run
MODEL_FILE = "model.safetensors"
SHA_TAG = "fin_ia.artifact_sha256"
# MLflow's HTTP client retries for minutes by default; a training step must learn fast that the server is down
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "20", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
               "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


PROBE_TIMEOUT_S = 10.0  # a live tracking server answers /health in milliseconds; a dead or hung one fails in this


class TrackingStoreError(RuntimeError):
    """The MLflow tracking store cannot be reached or used; raised before any training starts."""


def probe_tracking_server(tracking_uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """For an http(s) tracking URI: one ``GET /health`` with a short timeout (MLflow's own client would retry for
    up to a minute on a server that accepts connections but never answers). Other URIs are not probed."""
    import urllib.error
    import urllib.request
    from urllib.parse import urlparse

    if urlparse(tracking_uri).scheme not in ("http", "https"):
        return
    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as err:
        raise TrackingStoreError(f"MLflow tracking server {tracking_uri} answered {url} with HTTP {err.code}") from None
    except (urllib.error.URLError, OSError) as err:
        raise TrackingStoreError(f"cannot reach the MLflow tracking server {tracking_uri} "
                                 f"({getattr(err, 'reason', err)}); is it running, and is MLFLOW_TRACKING_URI "
                                 "right?") from None


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
    sha256: str  # of the registered model file


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


EXPERIMENT_KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


def mlflow_client(tracking_uri: str):
    """An ``MlflowClient`` on ``tracking_uri`` (tracking and registry), with bounded HTTP timeouts and retries."""
    import mlflow
    from mlflow import MlflowClient

    for key, value in HTTP_LIMITS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri, tracking_uri)


def _experiment_id(client, name: str, artifact_root: str | None) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None if artifact_root is None else f"{artifact_root.rstrip('/')}/{name}"
    # MLflow 3's UI opens experiments in its GenAI view unless they are marked as model training.
    return client.create_experiment(name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING})


class TrackedRun:
    """An open MLflow run; ``log_training`` records a finished training in it and registers the model."""

    def __init__(self, target: TrackingTarget, client, run, experiment_id: str, tags: Mapping[str, str]) -> None:
        self.target, self.client, self.run, self.experiment_id = target, client, run, experiment_id
        self.run_id = run.info.run_id
        self.tags = dict(tags)  # the run's tags; the registered version carries them too

    @property
    def url(self) -> str:
        return f"{self.target.ui_url.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    def log_training(self, result, *, model_name: str, kind: str, upstream: Sequence[UpstreamModel],
                     params: Mapping[str, str]) -> LoggedModel:
        """Params, per-step history, final metrics, datasets, the model artifact and its registered version."""
        import mlflow
        from mlflow.models import infer_signature

        from fin_ia_models.training.checkpoint import checkpoint_bytes, sha256_bytes

        lineage = {f"fin_ia.upstream.{i}.model": f"{u.name}/{u.version}" for i, u in enumerate(upstream)}
        lineage |= {f"fin_ia.upstream.{i}.run_id": u.run_id for i, u in enumerate(upstream)}
        mlflow.set_tags(lineage)
        mlflow.log_params(dict(params))
        for step, row in enumerate(result.history):
            mlflow.log_metrics({k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and np.isfinite(v)},
                               step=int(row.get("step", step)))
        mlflow.log_metrics({k: float(v) for k, v in result.metrics.items()
                            if isinstance(v, (int, float)) and np.isfinite(v)})
        for ref in result.datasets:
            frame = pd.DataFrame([{"symbols": ",".join(ref.symbols), "timeframe": ref.timeframe,
                                   "start_ms": ref.start_ms, "end_ms": ref.end_ms, "rows": ref.rows}])
            dataset = mlflow.data.from_pandas(frame, source=ref.source, name=ref.name, digest=ref.digest[:36])
            mlflow.log_input(dataset, context=ref.context, tags={**ref.tags(), "digest_sha256": ref.digest})
        data = checkpoint_bytes(result.model, kind, extra={"seed": result.seed})
        sha = sha256_bytes(data)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / MODEL_DIR
            folder.mkdir()
            (folder / MODEL_FILE).write_bytes(data)
            if result.input_example is not None and result.output_example is not None:
                signature = infer_signature(result.input_example, result.output_example)
                (folder / "signature.json").write_text(json.dumps(signature.to_dict(), indent=1))
            mlflow.log_artifacts(str(folder), artifact_path=MODEL_DIR)
        version = self._register(model_name, sha, {**self.tags, **lineage})
        return LoggedModel(self.run_id, self.experiment_id, model_name, version, f"models:/{model_name}/{version}",
                           self.url, sha)

    def _register(self, model_name: str, sha: str, tags: Mapping[str, str]) -> str:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(model_name)
        except MlflowException:
            self.client.create_registered_model(model_name)
        mv = self.client.create_model_version(model_name, source=f"{self.run.info.artifact_uri}/{MODEL_DIR}",
                                              run_id=self.run_id)
        version = str(mv.version)
        for key, value in {**tags, SHA_TAG: sha, "fin_ia.mlflow_run_id": self.run_id}.items():
            self.client.set_model_version_tag(model_name, version, key, value)
        self.client.set_registered_model_alias(model_name, CANDIDATE, version)
        return version


@contextmanager
def tracked_run(target: TrackingTarget, experiment: str, run_name: str,
                tags: Mapping[str, str]) -> Iterator[TrackedRun]:
    """Open a run (before training, so its duration is the training's and an unreachable store fails at once);
    it ends FINISHED when the block succeeds and FAILED when it raises."""
    import mlflow
    from mlflow.exceptions import MlflowException

    probe_tracking_server(target.tracking_uri)
    client = mlflow_client(target.tracking_uri)
    try:
        experiment_id = _experiment_id(client, experiment, target.artifact_root)
    except MlflowException as err:
        raise TrackingStoreError(f"MLflow tracking store {target.tracking_uri} cannot be used before training "
                                 f"(nothing was trained): {err}") from err
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags)) as run:
        yield TrackedRun(target, client, run, experiment_id, tags)


_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


def resolve_model_version(tracking_uri: str, model_uri: str):
    """The registry entry of ``models:/name/version`` or ``models:/name@alias``."""
    match = _MODEL_URI.match(model_uri)
    if not match:
        raise ValueError(f"cannot read model URI {model_uri!r}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
    client = mlflow_client(tracking_uri)
    if match.group("alias"):
        return client.get_model_version_by_alias(match.group("name"), match.group("alias"))
    return client.get_model_version(match.group("name"), match.group("version"))


def load_registered_model(tracking_uri: str, model_uri: str):
    """Load a registered fin-ia model onto the CPU after checking its file against the SHA-256 recorded at
    registration; a missing hash or a mismatch is a ``CheckpointError`` and nothing is loaded."""
    import mlflow

    from fin_ia_models.training.checkpoint import CheckpointError, load_checkpoint_bytes

    mv = resolve_model_version(tracking_uri, model_uri)
    label = f"{mv.name} v{mv.version}"
    expected = (mv.tags or {}).get(SHA_TAG)
    if not expected:
        raise CheckpointError(f"{label} has no {SHA_TAG} tag (registered before integrity hashes, or tampered): "
                              "re-materialize it")
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source))
    path = folder / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"{label}: no {MODEL_FILE} in its artifacts at {mv.source}")
    return load_checkpoint_bytes(path.read_bytes(), f"{label} ({mv.source}/{MODEL_FILE})", None, expected)


def log_trained_model(target: TrackingTarget, *, experiment: str, model_name: str, kind: str, result,
                      upstream: Sequence[UpstreamModel], tags: Mapping[str, str], params: Mapping[str, str],
                      run_name: str | None = None) -> LoggedModel:
    """Open a run, log a finished ``TrainingResult`` and register its model, in one call (notebooks, tests)."""
    with tracked_run(target, experiment, run_name or model_name, tags) as run:
        return run.log_training(result, model_name=model_name, kind=kind, upstream=upstream, params=params)
