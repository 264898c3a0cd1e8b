"""Strate II: Mamba-2 (SSD) blocks with an exo-clock and the Fin-JEPA world model (pure PyTorch + Lightning)."""
