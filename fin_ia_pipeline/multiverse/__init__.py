"""Strate III: ``multiverse_model`` and ``multiverse_trajectories`` (group ``multiverse``)."""
