"""The one seeding helper. Every entry point (training, sampling, synthetic data) calls ``seed_everything`` first."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int, deterministic: bool = True) -> np.random.Generator:
    """Seed python, numpy and torch (if installed) and return a numpy Generator for local use.

    ``deterministic`` asks torch for deterministic kernels. On CPU that makes the same seed and data give the same
    weights bit for bit; on CUDA some fused kernels have no deterministic variant, so torch only warns there.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch
    except ImportError:  # torch is a core dependency, but the data layer must work without it
        return np.random.default_rng(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)
