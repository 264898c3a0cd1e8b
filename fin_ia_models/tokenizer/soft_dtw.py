"""Soft-DTW (Cuturi & Blondel 2017, "Soft-DTW: a Differentiable Loss Function for Time-Series", ICML) and the
soft-DTW divergence (Blondel, Mensch, Vert 2021, "Differentiable Divergences Between Time Series", AISTATS).

Implementation choice: our own batched recursion, vectorized over ANTI-DIAGONALS in plain PyTorch, differentiated by
autograd. Cells on one anti-diagonal i + j = k depend only on diagonals k-1 and k-2, so each of the n+m-1 steps is
one batched tensor op over (B, n+1) — for 16-candle patches that is 31 small ops per call. We did not take a library:
the known ones (tslearn's SoftDTWLossPyTorch, pysdtw, Maghoumi's pytorch-softdtw-cuda) run the recursion in numba
kernels, an extra compiled dependency the project does not otherwise need; this 30-line torch recursion runs on CPU and
CUDA with no new dependency, and its gradient is checked against finite differences. ``soft_dtw_ref`` is the plain
O(n·m) double loop beside it (the parity reference).
"""

from __future__ import annotations

import math

import torch

_BIG = 1e10  # stands for +inf in R's border; finite so that the softmin never sees inf - inf (NaN gradients)
_MAX_GAP = 80.0  # cap on (v - min) / gamma inside the softmin, see ``_softmin3``


def pairwise_sq_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, n, C), (B, m, C) → squared Euclidean cost (B, n, m)."""
    return ((x[:, :, None, :] - y[:, None, :, :]) ** 2).sum(dim=-1)


def _softmin3(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, gamma: float) -> torch.Tensor:
    """-gamma·log Σ exp(-v/gamma) over the three predecessors, shifted by their minimum.

    The scaled gaps are capped at ``_MAX_GAP``: exp(-gap) for gaps in ~(87, 104) are float32 DENORMALS, which are
    ~100x slower on x86 CPUs (a badly reconstructed batch made a training step take seconds). exp(-80) ≈ 2e-35 is
    negligible next to the minimum's weight 1, so the value and gradient change by < 1e-34 relative. The min is
    detached: the exact function does not depend on the shift, so its derivative through it is zero.
    """
    stacked = torch.stack([a, b, c], dim=0)  # (3, B, n+1)
    low = stacked.min(dim=0).values.detach()  # (B, n+1)
    gaps = ((stacked - low) / gamma).clamp(max=_MAX_GAP)  # (3, B, n+1) >= 0
    return low - gamma * torch.log(torch.exp(-gaps).sum(dim=0))


def soft_dtw_cost(cost: torch.Tensor, gamma: float) -> torch.Tensor:
    """Soft-DTW value (B,) of a cost matrix (B, n, m), by anti-diagonals.

    ``diag[k][:, i]`` holds R[i, k - i] for i in 0..n (R is the (n+1, m+1) soft-DTW table, R[0, 0] = 0, the rest of
    row/column 0 is +inf).
    """
    if gamma <= 0:
        raise ValueError(f"soft-DTW gamma must be > 0, got {gamma}")
    cost = cost.float() if cost.dtype in (torch.float16, torch.bfloat16) else cost
    batch, n, m = cost.shape
    i = torch.arange(n + 1, device=cost.device)  # (n+1,)
    big = torch.full((batch, n + 1), _BIG, dtype=cost.dtype, device=cost.device)
    pad = big[:, :1]
    diag_km2 = big.clone()
    diag_km2[:, 0] = 0.0  # k = 0: R[0, 0] = 0
    diag_km1 = big  # k = 1: R[0, 1] = R[1, 0] = inf
    for k in range(2, n + m + 1):
        j = k - i  # (n+1,) column of each cell on this diagonal
        valid = (i >= 1) & (j >= 1) & (j <= m) & (i <= n)  # (n+1,)
        d = cost[:, (i - 1).clamp(0, n - 1), (j - 1).clamp(0, m - 1)]  # (B, n+1) D[i-1, j-1]
        up_left = torch.cat([pad, diag_km2[:, :-1]], dim=1)  # R[i-1, j-1]
        up = torch.cat([pad, diag_km1[:, :-1]], dim=1)  # R[i-1, j]
        left = diag_km1  # R[i, j-1]
        new = torch.where(valid, d + _softmin3(up_left, up, left, gamma), big)
        diag_km2, diag_km1 = diag_km1, new
    return diag_km1[:, n]


def soft_dtw(x: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    """Soft-DTW between sequences x (B, n, C) and y (B, m, C) under squared Euclidean cost → (B,)."""
    return soft_dtw_cost(pairwise_sq_dist(x, y), gamma)


def soft_dtw_divergence(x: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    """sdtw(x, y) − ½(sdtw(x, x) + sdtw(y, y)) → (B,): >= 0 and 0 iff x = y, unlike raw soft-DTW (a proper loss)."""
    return soft_dtw(x, y, gamma) - 0.5 * (soft_dtw(x, x, gamma) + soft_dtw(y, y, gamma))


def soft_dtw_ref(x, y, gamma: float) -> float:
    """Plain O(n·m) recursion for ONE pair x (n, C), y (m, C) (array-likes), in python floats — the reference."""
    x = [[float(v) for v in row] for row in x]
    y = [[float(v) for v in row] for row in y]
    n, m = len(x), len(y)
    inf = math.inf
    r = [[inf] * (m + 1) for _ in range(n + 1)]
    r[0][0] = 0.0
    for a in range(1, n + 1):
        for b in range(1, m + 1):
            d = sum((p - q) ** 2 for p, q in zip(x[a - 1], y[b - 1]))
            prev = [r[a - 1][b - 1], r[a - 1][b], r[a][b - 1]]
            low = min(prev)
            softmin = low - gamma * math.log(sum(math.exp(-(v - low) / gamma) for v in prev))
            r[a][b] = d + softmin
    return r[n][m]
