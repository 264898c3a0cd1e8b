"""Resolve a registered model's lineage: its run, the upstream model versions it consumed (recursively), the
datasets (candle partitions: symbols, timeframe, time range, digest) and the Dagster runs that made each step."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from fin_ia_models.data.schema import format_ms


class LineageError(LookupError):
    """Unknown model, version or alias."""


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


def _version(client, name: str, alias: str | None, version: str | None):
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        known = sorted(m.name for m in client.search_registered_models())
        raise LineageError(f"no registered model {name!r} (known: {', '.join(known) or 'none'})") from None
    try:
        if alias:
            return client.get_model_version_by_alias(name, alias)
        if version:
            return client.get_model_version(name, version)
    except MlflowException:
        raise LineageError(f"{name} has no {'alias @' + alias if alias else 'version ' + str(version)}") from None
    try:
        return client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        versions = client.search_model_versions(f"name='{name}'")
        return max(versions, key=lambda v: int(v.version))


def resolve_lineage(tracking_uri: str, spec: str, _depth: int = 0) -> ModelNode:
    from mlflow import MlflowClient

    if _depth > 16:
        raise LineageError("lineage deeper than 16 levels: a cycle in the upstream tags?")
    client = MlflowClient(tracking_uri, tracking_uri)
    name, alias, version = parse_model_spec(spec)
    mv = _version(client, name, alias, version)
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
