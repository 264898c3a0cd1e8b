"""MLflow helpers with plain arguments: one run per trained artifact, datasets with content digests, lineage tags,
registry aliases and promotion, lineage resolution. Nothing here knows Dagster; the pipeline passes its run ids in."""
