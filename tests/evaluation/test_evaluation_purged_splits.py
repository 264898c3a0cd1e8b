"""Purged, embargoed k-fold and walk-forward splits against index sets worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from fin_ia_models.evaluation.purged_splits import purged_kfold_splits, walk_forward_splits

# 10 samples at t0 = 0..9 whose labels span 3 steps: [t, t + 2]
T0 = np.arange(10)
T1 = T0 + 2


def as_lists(splits):
    return [(train.tolist(), test.tolist()) for train, test in splits]


def test_purged_kfold_by_hand():
    # fold {2, 3} spans [2, 5]: samples 0, 1 (labels end at 2, 3) and 4, 5 (start at 4, 5) overlap it → purged
    # fold {0, 1} spans [0, 3]: 2, 3 are purged; fold {8, 9} spans [8, 11]: 6, 7 (labels end at 8, 9) are purged
    assert as_lists(purged_kfold_splits(T0, T1, n_splits=5)) == [
        ([4, 5, 6, 7, 8, 9], [0, 1]),
        ([6, 7, 8, 9], [2, 3]),
        ([0, 1, 8, 9], [4, 5]),
        ([0, 1, 2, 3], [6, 7]),
        ([0, 1, 2, 3, 4, 5], [8, 9]),
    ]


def test_embargo_by_count_and_by_time():
    # embargo_fraction 0.1 of 10 samples = 1: the first sample kept after each test span is dropped too
    assert as_lists(purged_kfold_splits(T0, T1, n_splits=5, embargo_fraction=0.1)) == [
        ([5, 6, 7, 8, 9], [0, 1]),
        ([7, 8, 9], [2, 3]),
        ([0, 1, 9], [4, 5]),
        ([0, 1, 2, 3], [6, 7]),
        ([0, 1, 2, 3, 4, 5], [8, 9]),
    ]
    # embargo of 2 time units after the span end: fold {2, 3} ends at 5 → samples starting at 6, 7 dropped
    assert as_lists(purged_kfold_splits(T0, T1, n_splits=5, embargo_ms=2))[1] == ([8, 9], [2, 3])


def test_walk_forward_by_hand():
    # 3 test blocks after a first block: blocks {0,1,2}, {3,4,5}, {6,7}, {8,9}; train = earlier samples whose label
    # ends before the test block starts (t1 < start)
    assert as_lists(walk_forward_splits(T0, T1, n_splits=3)) == [
        ([0], [3, 4, 5]),  # start 3: t1 = 2 only for sample 0
        ([0, 1, 2, 3], [6, 7]),  # start 6: t1 < 6 ⇔ t0 < 4
        ([0, 1, 2, 3, 4, 5], [8, 9]),
    ]
    assert as_lists(walk_forward_splits(T0, T1, n_splits=3, max_train=2))[2] == ([4, 5], [8, 9])


def test_no_train_label_touches_a_test_span():
    rng = np.random.default_rng(0)
    t0 = np.sort(rng.integers(0, 1000, 200))
    t1 = t0 + rng.integers(0, 30, 200)
    for train, test in purged_kfold_splits(t0, t1, n_splits=6, embargo_ms=10):
        start, end = t0[test].min(), t1[test].max()
        assert not ((t0[train] <= end) & (t1[train] >= start)).any()
        assert not ((t0[train] > end) & (t0[train] <= end + 10)).any()
        assert not np.intersect1d(train, test).size


def test_errors_are_named():
    with pytest.raises(ValueError, match="t1 must be >= start t0"):
        purged_kfold_splits(T0, T0 - 1)
    with pytest.raises(ValueError, match="sorted by t0"):
        purged_kfold_splits(T0[::-1], T1[::-1])
    with pytest.raises(ValueError, match="not both"):
        purged_kfold_splits(T0, T1, embargo_ms=1, embargo_fraction=0.1)
    with pytest.raises(ValueError, match="cannot make 20 folds"):
        purged_kfold_splits(T0, T1, n_splits=20)
    with pytest.raises(ValueError, match="no training sample is left"):
        walk_forward_splits(T0, T0 + 9, n_splits=3)
