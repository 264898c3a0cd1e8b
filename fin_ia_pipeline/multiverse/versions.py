"""Which upstream versions made the symbol frames an asset reads, from their latest materialization metadata.

``token_sequences`` and ``jepa_embeddings`` record ``tokenizer_model`` / ``jepa_model`` (``name/version``, see
``fin_ia_pipeline.training.upstream_metadata``) on every partition. The multiverse reads latents and embeddings that
must come from exactly the tokenizer and Fin-JEPA it is trained with (or was trained with): a partition made by
another version is an error that names it, never a silent mix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import dagster as dg


def version_of(model) -> str:
    """``name/version`` of a model loaded by the model IO manager."""
    lineage = model.fin_ia_lineage
    return f"{lineage.name}/{lineage.version}"


def recorded_versions(instance: dg.DagsterInstance, asset: str, partition: str, keys: Iterable[str]) -> dict[str, str]:
    """The ``keys`` of the latest materialization metadata of ``asset``'s ``partition``."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1).records
    meta = records[0].event_log_entry.asset_materialization.metadata if records else {}
    missing = [k for k in keys if k not in meta]
    if missing:
        raise ValueError(f"{asset} [{partition}] recorded no {missing} in its metadata: re-materialize it")
    return {k: str(meta[k].value) for k in keys}


def require_made_by(instance: dg.DagsterInstance, asset: str, partitions: Iterable[str],
                    expected: Mapping[str, str]) -> None:
    """Every partition of ``asset`` was made by the ``expected`` versions (metadata key → ``name/version``)."""
    for partition in partitions:
        found = recorded_versions(instance, asset, partition, expected)
        wrong = {k: v for k, v in found.items() if v != expected[k]}
        if wrong:
            raise ValueError(f"{asset} [{partition}] was made by {wrong}, but this run uses "
                             f"{ {k: expected[k] for k in wrong} }: re-materialize {asset} first")
