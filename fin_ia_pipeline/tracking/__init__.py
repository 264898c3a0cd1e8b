"""MLflow as a Dagster resource: lineage tags from the Dagster context, plain helpers underneath."""
