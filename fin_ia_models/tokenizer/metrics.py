"""Tokenizer quality metrics on held-out patches: codebook utilization, perplexity, reconstruction error.

Perplexity = exp(entropy of the empirical token distribution) (the usual VQ-VAE code-usage measure); it equals the
codebook size only when every code is used equally often. Reconstruction error is measured after the RevIN inverse,
i.e. in the original feature units (log returns × ``return_scale`` = percent, and log1p relative volume).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from fin_ia_models.tokenizer.features import FEATURE_NAMES
from fin_ia_models.tokenizer.model import TokenizerModel


def code_usage(indices: np.ndarray, codebook_size: int) -> dict[str, float]:
    """Utilization (share of codes used at least once) and perplexity of a token array."""
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size == 0:
        raise ValueError("code_usage needs at least one token")
    if indices.min() < 0 or indices.max() >= codebook_size:
        raise ValueError(f"token ids must lie in [0, {codebook_size}), got [{indices.min()}, {indices.max()}]")
    counts = np.bincount(indices, minlength=codebook_size)
    p = counts[counts > 0] / indices.size
    entropy = float(-(p * np.log(p)).sum())
    return {
        "n_patches": int(indices.size),
        "codes_used": int((counts > 0).sum()),
        "utilization": float((counts > 0).mean()),
        "perplexity": math.exp(entropy),
        # what a perfectly uniform tokenizer would reach with this many patches (coupon-collector expectation)
        "uniform_expected_utilization": float(1 - (1 - 1 / codebook_size) ** indices.size),
        "uniform_reference_perplexity": uniform_reference_perplexity(indices.size, codebook_size),
    }


def uniform_reference_perplexity(n_tokens: int, codebook_size: int, draws: int = 20) -> float:
    """Mean perplexity of ``n_tokens`` ideal uniform draws from ``codebook_size`` codes (fixed-seed Monte Carlo):
    the ceiling a finite sample allows, e.g. ~1.1k tokens cannot show a perplexity near 1024."""
    rng = np.random.default_rng(0)
    values = []
    for _ in range(draws):
        counts = np.bincount(rng.integers(0, codebook_size, n_tokens), minlength=codebook_size)
        p = counts[counts > 0] / n_tokens
        values.append(math.exp(float(-(p * np.log(p)).sum())))
    return float(np.mean(values))


@torch.no_grad()
def evaluate_patches(model: TokenizerModel, patches: np.ndarray, batch_size: int = 2048) -> dict[str, float]:
    """Run ``model`` over patches (M, L, C) and return usage + reconstruction metrics."""
    if len(patches) == 0:
        raise ValueError("evaluate_patches needs at least one patch")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    indices, abs_err, sq_err = [], [], []
    try:
        for start in range(0, len(patches), batch_size):
            x = torch.as_tensor(patches[start:start + batch_size], dtype=torch.float32, device=device)
            out = model(x)
            indices.append(out.indices.cpu().numpy())
            err = (out.recon.float() - x).cpu().numpy()  # (b, L, C) original units
            abs_err.append(np.abs(err).reshape(-1, err.shape[-1]))
            sq_err.append((err**2).reshape(-1, err.shape[-1]))
    finally:
        model.train(was_training)
    abs_all, sq_all = np.concatenate(abs_err), np.concatenate(sq_err)
    metrics = code_usage(np.concatenate(indices), model.codebook_size)
    metrics["recon_mae"] = float(abs_all.mean())
    # what the RevIN statistics alone give (every candle = its patch's mean): the token must beat this
    metrics["recon_mae_patch_mean_baseline"] = float(np.abs(patches - patches.mean(axis=1, keepdims=True)).mean())
    metrics["recon_rmse"] = float(np.sqrt(sq_all.mean()))
    for j, name in enumerate(FEATURE_NAMES):
        metrics[f"recon_mae_{name}"] = float(abs_all[:, j].mean())
    return metrics
