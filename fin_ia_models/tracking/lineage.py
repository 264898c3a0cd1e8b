"""Resolve a registered model's lineage: its run, the upstream model versions it consumed (recursively), the
datasets (candle partitions: symbols, timeframe, time range, digest) and the Dagster runs that made each step."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from fin_ia_models.data.schema import format_ms


class LineageError(LookupError):
    """Unknown model, version or alias; or a tracking store that does not exist or cannot be reached."""


_STORE_TABLES = ("registered_models", "model_versions", "runs")  # what a tracking store has once MLflow created it


def check_store(tracking_uri: str) -> None:
    """Refuse a tracking URI that names no existing MLflow store, before any MLflow client touches it: MLflow creates
    a fresh empty sqlite database (or file store) at an unknown location, and a lookup in it then reports "no
    registered model" instead of "wrong place". A server is probed on ``/health`` with a short timeout, so a dead
    one gives a connection error within seconds instead of MLflow's minutes of retries."""
    import sqlite3
    from contextlib import closing
    from pathlib import Path
    from urllib.parse import urlparse

    scheme = urlparse(tracking_uri).scheme
    if scheme == "sqlite":
        path = Path(tracking_uri.removeprefix("sqlite:///"))
        hint = "run `fin-ia demo` first, or pass --tracking-uri / set MLFLOW_TRACKING_URI to the store the pipeline wrote"
        if not path.is_file():
            raise LineageError(f"no MLflow tracking store at {tracking_uri}: {path.resolve()} does not exist ({hint})")
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:  # read-only: never creates
                tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as err:
            raise LineageError(f"{tracking_uri} is not an MLflow tracking store: {path} is not a readable sqlite "
                               f"database ({err})") from None
        if not set(_STORE_TABLES) <= tables:
            raise LineageError(f"{tracking_uri} is not an MLflow tracking store: {path} has no MLflow tables ({hint})")
    elif scheme in ("http", "https"):
        from fin_ia_models.tracking.runs import TrackingStoreError, probe_tracking_server

        try:
            probe_tracking_server(tracking_uri)
        except TrackingStoreError as err:
            raise LineageError(str(err)) from None
    elif scheme in ("", "file"):
        path = Path(urlparse(tracking_uri).path if scheme else tracking_uri)
        if not path.is_dir():
            raise LineageError(f"no MLflow tracking store at {tracking_uri}: {path} is not a folder")
    # databricks, postgresql://, ...: MLflow's own client reports what is wrong (bounded by runs.HTTP_LIMITS)


@dataclass
class DatasetNode:
    name: str
    context: str
    digest: str
    tags: dict[str, str]


@dataclass
class ModelNode:
    name: str
    version: str
    run_id: str
    aliases: list[str]
    dagster_run_id: str
    asset_key: str
    partition_keys: str
    code_version: str
    git_commit: str
    datasets: list[DatasetNode] = field(default_factory=list)
    upstream: list["ModelNode"] = field(default_factory=list)


_SPEC = re.compile(r"^(?P<name>[^@/]+)(?:@(?P<alias>[^@/]+)|/(?P<version>\d+))?$")


def parse_model_spec(spec: str) -> tuple[str, str | None, str | None]:
    """``name``, ``name@alias`` or ``name/version`` → (name, alias, version); bare name means ``@champion`` if set,
    else the latest version."""
    match = _SPEC.match(spec.strip())
    if not match:
        raise LineageError(f"cannot read model spec {spec!r}: expected NAME, NAME@ALIAS or NAME/VERSION")
    return match.group("name"), match.group("alias"), match.group("version")


def _not_found(err) -> bool:
    """True when MLflow says the thing does not exist; False for every other failure (connection, permission...)."""
    return getattr(err, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def _version(client, name: str, alias: str | None, version: str | None, uri: str):
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as err:
        if not _not_found(err):
            raise LineageError(f"cannot read registered model {name!r} from {uri}: {err}") from None
        known = sorted(m.name for m in client.search_registered_models())
        raise LineageError(f"no registered model {name!r} in {uri} (known: {', '.join(known) or 'none'})") from None
    try:
        if alias:
            return client.get_model_version_by_alias(name, alias)
        if version:
            return client.get_model_version(name, version)
    except MlflowException as err:
        if not _not_found(err):
            raise LineageError(f"cannot read {name} from {uri}: {err}") from None
        raise LineageError(f"{name} has no {'alias @' + alias if alias else 'version ' + str(version)}") from None
    try:
        return client.get_model_version_by_alias(name, "champion")
    except MlflowException as err:
        if not _not_found(err):
            raise LineageError(f"cannot read {name}@champion from {uri}: {err}") from None
        versions = client.search_model_versions(f"name='{name}'")
        return max(versions, key=lambda v: int(v.version))


def resolve_lineage(tracking_uri: str, spec: str, _depth: int = 0) -> ModelNode:
    from fin_ia_models.tracking.runs import mlflow_client

    if _depth > 16:
        raise LineageError("lineage deeper than 16 levels: a cycle in the upstream tags?")
    name, alias, version = parse_model_spec(spec)
    if _depth == 0:
        check_store(tracking_uri)
    client = mlflow_client(tracking_uri)  # bounded HTTP timeouts and retries
    mv = _version(client, name, alias, version, tracking_uri)
    run = client.get_run(mv.run_id)
    tags = run.data.tags
    node = ModelNode(
        name=name, version=str(mv.version), run_id=mv.run_id, aliases=list(mv.aliases or []),
        dagster_run_id=tags.get("fin_ia.dagster.run_id", "-"), asset_key=tags.get("fin_ia.dagster.asset_key", "-"),
        partition_keys=tags.get("fin_ia.dagster.partition_keys", "-"),
        code_version=tags.get("fin_ia.code_version", "-"), git_commit=tags.get("fin_ia.git_commit", "-"),
    )
    for di in run.inputs.dataset_inputs:
        input_tags = {t.key: t.value for t in di.tags}
        node.datasets.append(DatasetNode(di.dataset.name, input_tags.pop("mlflow.data.context", "-"),
                                         input_tags.pop("digest_sha256", di.dataset.digest), input_tags))
    i = 0
    while f"fin_ia.upstream.{i}.model" in tags:
        up_name, up_version = tags[f"fin_ia.upstream.{i}.model"].rsplit("/", 1)
        node.upstream.append(resolve_lineage(tracking_uri, f"{up_name}/{up_version}", _depth + 1))
        i += 1
    return node


def lineage_json(node: ModelNode) -> str:
    return json.dumps(asdict(node), indent=2)


def format_lineage(node: ModelNode, indent: int = 0) -> str:
    pad = "  " * indent
    aliases = f" @{', @'.join(node.aliases)}" if node.aliases else ""
    lines = [
        f"{pad}{node.name} v{node.version}{aliases}  (MLflow run {node.run_id})",
        f"{pad}  made by Dagster run {node.dagster_run_id}, asset {node.asset_key}, code {node.code_version}, "
        f"git {node.git_commit[:10]}",
    ]
    for ds in node.datasets:
        t = ds.tags
        span = ""
        if "start_ms" in t and "end_ms" in t:
            span = f" {format_ms(int(t['start_ms']))} → {format_ms(int(t['end_ms']))}"
        extra = {k: v for k, v in t.items() if k not in ("fin_ia.dataset", "symbols", "timeframe", "start_ms",
                                                         "end_ms", "rows")}
        lines.append(f"{pad}  ← {ds.context} data {ds.name}: {t.get('symbols', '?')} {t.get('timeframe', '?')}"
                     f"{span}, {t.get('rows', '?')} rows, sha256 {ds.digest[:16]}…"
                     + (f" ({', '.join(f'{k}={v}' for k, v in extra.items())})" if extra else ""))
    for up in node.upstream:
        lines.append(f"{pad}  ← upstream model:")
        lines.append(format_lineage(up, indent + 2))
    return "\n".join(lines)
