"""Purged, embargoed cross-validation for labels that span time (López de Prado 2018, "Advances in Financial Machine
Learning", ch. 7: sections 7.4.1 purging, 7.4.2 embargo, snippet 7.3 ``PurgedKFold``).

Each sample i has a feature time t0[i] and a label-end time t1[i] >= t0[i] (e.g. a token's end_timestamp and the end
of its 24 h target horizon); its information spans the closed interval [t0[i], t1[i]]. Samples are in time order (t0
non-decreasing).

- Test folds are contiguous blocks of samples. A test fold spans [min t0, max t1] of its samples.
- Purging: a training sample whose [t0, t1] intersects the test span is removed (its label was formed with test-period
  prices, or the test labels with its period's). Intervals are closed, so touching at one instant also purges — one
  instant stricter than snippet 7.3, which keeps a train label ending exactly at the test start.
- Embargo: serial correlation lets the test period leak into the samples right after it, so training samples that
  start after the test span are also dropped while ``t0 <= test_end + embargo_ms`` (a time span), or the first
  ``ceil(embargo_fraction · n)`` of them (AFML's ``pctEmbargo``, counted in samples).
- Walk-forward: each test fold trains on (purged) samples before it only, expanding, optionally capped to the most
  recent ``max_train`` samples; nothing after the test fold is used, so no embargo is needed.
"""

from __future__ import annotations

import math

import numpy as np


def _check_times(t0: np.ndarray, t1: np.ndarray, n_splits: int) -> tuple[np.ndarray, np.ndarray]:
    t0 = np.asarray(t0, np.int64)
    t1 = np.asarray(t1, np.int64)
    if t0.ndim != 1 or t0.shape != t1.shape:
        raise ValueError(f"t0 and t1 must be 1-D of the same length, got {t0.shape} and {t1.shape}")
    if (t1 < t0).any():
        i = int(np.argmax(t1 < t0))
        raise ValueError(f"label end t1 must be >= start t0: sample {i} has t0={t0[i]}, t1={t1[i]}")
    if (np.diff(t0) < 0).any():
        raise ValueError("samples must be sorted by t0")
    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2, got {n_splits}")
    if len(t0) < n_splits:
        raise ValueError(f"{len(t0)} samples cannot make {n_splits} folds")
    return t0, t1


def _folds(n: int, n_splits: int) -> list[np.ndarray]:
    return np.array_split(np.arange(n), n_splits)  # contiguous, sizes differ by at most one


def _overlaps(t0: np.ndarray, t1: np.ndarray, start: int, end: int) -> np.ndarray:
    """(n,) whether [t0, t1] intersects the closed interval [start, end]."""
    return (t0 <= end) & (t1 >= start)


def purged_kfold_splits(t0: np.ndarray, t1: np.ndarray, n_splits: int = 5, embargo_ms: int = 0,
                        embargo_fraction: float = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(train_idx, test_idx), ...]`` for each of ``n_splits`` contiguous test folds, purged and embargoed."""
    t0, t1 = _check_times(t0, t1, n_splits)
    if embargo_ms < 0 or not 0.0 <= embargo_fraction < 1.0:
        raise ValueError(f"embargo must be >= 0 (embargo_ms={embargo_ms}) and embargo_fraction in [0, 1) "
                         f"(got {embargo_fraction})")
    if embargo_ms and embargo_fraction:
        raise ValueError("give the embargo as a time span (embargo_ms) or a fraction of samples, not both")
    n = len(t0)
    embargo_count = math.ceil(embargo_fraction * n)
    splits = []
    for test in _folds(n, n_splits):
        start, end = int(t0[test].min()), int(t1[test].max())
        keep = ~_overlaps(t0, t1, start, end)
        keep[test] = False
        after = np.flatnonzero(keep & (t0 > end))  # candidates for the embargo, in time order
        if embargo_ms:
            keep[after[t0[after] <= end + embargo_ms]] = False
        elif embargo_count:
            keep[after[:embargo_count]] = False
        splits.append((np.flatnonzero(keep), test))
    return splits


def walk_forward_splits(t0: np.ndarray, t1: np.ndarray, n_splits: int = 5, max_train: int | None = None
                        ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(train_idx, test_idx), ...]``: the samples are cut into ``n_splits + 1`` contiguous blocks; block k + 1 is
    tested after training on the samples before it whose labels end before the test span starts (purged)."""
    t0, t1 = _check_times(t0, t1, n_splits + 1)
    if max_train is not None and max_train < 1:
        raise ValueError(f"max_train must be >= 1 or None, got {max_train}")
    blocks = _folds(len(t0), n_splits + 1)
    splits = []
    for test in blocks[1:]:
        start = int(t0[test].min())
        train = np.flatnonzero((np.arange(len(t0)) < test[0]) & (t1 < start))
        if max_train is not None:
            train = train[-max_train:]
        if len(train) == 0:
            raise ValueError(f"no training sample is left before the test fold starting at {start} after purging")
        splits.append((train, test))
    return splits
