"""Strate II: ``jepa_encoder`` and ``jepa_embeddings`` (group ``world_model``)."""
