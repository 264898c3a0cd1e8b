"""What the agent assets read and which registered versions made it.

The agents observe the JEPA embeddings and the multiverse's futures of every symbol. Both must come from one
consistent chain: every ``multiverse_trajectories`` partition made by the same multiverse version (and the same
Fin-JEPA and tokenizer, recorded in its metadata), and every ``jepa_embeddings`` partition made by that Fin-JEPA and
tokenizer — otherwise a clear error names the partition and both versions, never a silent mix. The lineage of an
agent (``UpstreamModel``: name, version, MLflow run) is read from that metadata and the registry, without loading
the upstream models.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from fin_ia_models.tracking.runs import UpstreamModel
from fin_ia_pipeline.multiverse.versions import recorded_versions, require_made_by

KEYS = ("multiverse_model", "jepa_model", "tokenizer_model")  # metadata of multiverse_trajectories (name/version)


def chain_versions(instance: dg.DagsterInstance, symbols: Iterable[str]) -> dict[str, str]:
    """The one (multiverse, Fin-JEPA, tokenizer) ``name/version`` triple behind every symbol's trajectories and
    embeddings; a ValueError names the first symbol that differs."""
    symbols = sorted(symbols)
    if not symbols:
        raise ValueError("no multiverse_trajectories partition to train on: materialize them first")
    first = recorded_versions(instance, "multiverse_trajectories", symbols[0], KEYS)
    for symbol in symbols[1:]:
        found = recorded_versions(instance, "multiverse_trajectories", symbol, KEYS)
        if found != first:
            raise ValueError(f"multiverse_trajectories [{symbol}] was made by {found}, [{symbols[0]}] by {first}: "
                             "re-materialize multiverse_trajectories for every symbol with one multiverse")
    require_made_by(instance, "jepa_embeddings", symbols,
                    {"jepa_model": first["jepa_model"], "tokenizer_model": first["tokenizer_model"]})
    return first


def upstream_models(tracking_uri: str, versions: dict[str, str]) -> list[UpstreamModel]:
    """``UpstreamModel`` (with its MLflow run) of each ``name/version`` in ``versions``, in KEYS order."""
    from fin_ia_models.tracking.runs import mlflow_client

    client = mlflow_client(tracking_uri)
    out = []
    for key in KEYS:
        name, version = versions[key].rsplit("/", 1)
        out.append(UpstreamModel(name, version, client.get_model_version(name, version).run_id))
    return out


def lineage_metadata(versions: dict[str, str]) -> dict[str, str]:
    return {key: versions[key] for key in KEYS}
