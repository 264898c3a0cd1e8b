"""IO managers shared by the learned stages (frames as parquet, model checkpoints)."""
