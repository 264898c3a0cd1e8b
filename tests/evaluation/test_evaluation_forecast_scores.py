"""CRPS, energy score, PIT and coverage against hand-computed values, the O(m²) references and the Gaussian closed
form."""

from __future__ import annotations

import numpy as np
import pytest

from fin_ia_models.evaluation.forecast_scores import (crps_ensemble, crps_ensemble_ref, crps_gaussian, energy_score,
                                                      energy_score_ref, interval_coverage, pit_uniformity, pit_values)


def test_crps_hand_computed():
    # members 1, 2, 4 and outcome 3: E|X - y| = (2 + 1 + 1) / 3 = 4/3; Σ_{i,j}|x_i - x_j| = 2·(1 + 3 + 2) = 12
    samples, y = np.array([[1.0, 2.0, 4.0]]), np.array([3.0])
    assert crps_ensemble(samples, y)[0] == pytest.approx(4 / 3 - 0.5 * 12 / 9)  # standard: /m² → 2/3
    assert crps_ensemble(samples, y, fair=True)[0] == pytest.approx(4 / 3 - 0.5 * 12 / 6)  # fair: /m(m-1) → 1/3
    # one member: the CRPS is the absolute error
    assert crps_ensemble(np.array([[2.5]]), np.array([4.0]))[0] == pytest.approx(1.5)


@pytest.mark.parametrize("fair", [False, True])
@pytest.mark.parametrize("m", [2, 7, 32])
def test_crps_sorted_matches_double_loop(fair, m):
    rng = np.random.default_rng(m)
    samples = rng.standard_t(3, size=(40, m))
    samples[:, 1] = samples[:, 0]  # ties
    y = rng.normal(size=40)
    np.testing.assert_allclose(crps_ensemble(samples, y, fair), crps_ensemble_ref(samples, y, fair), rtol=1e-12,
                               atol=1e-12)


def test_crps_matches_gaussian_closed_form():
    rng = np.random.default_rng(0)
    mu, sigma = np.array([0.0, 0.3, -1.0]), np.array([1.0, 1.7, 0.2])
    y = np.array([0.5, -2.0, -1.1])
    samples = mu[:, None] + sigma[:, None] * rng.standard_normal((3, 100_000))
    exact = crps_gaussian(mu, sigma, y)
    # closed form by hand at z = 0.5 (mu 0, sigma 1): 0.5(2Φ(0.5) - 1) + 2φ(0.5) - 1/√π
    assert exact[0] == pytest.approx(0.5 * (2 * 0.6914625 - 1) + 2 * 0.3520653 - 1 / np.sqrt(np.pi), abs=1e-6)
    np.testing.assert_allclose(crps_ensemble(samples, y, fair=True), exact, rtol=1e-2)
    np.testing.assert_allclose(crps_ensemble(samples, y), exact, rtol=1e-2)


def test_energy_score_hand_computed_and_reference():
    # members (0,0), (3,4); outcome (0,4): E||X - y|| = (4 + 3)/2; the only distinct pair is 5 apart (twice ordered)
    samples, y = np.array([[[0.0, 0.0], [3.0, 4.0]]]), np.array([[0.0, 4.0]])
    assert energy_score(samples, y)[0] == pytest.approx(3.5 - 0.5 * 10 / 4)
    assert energy_score(samples, y, fair=True)[0] == pytest.approx(3.5 - 0.5 * 10 / 2)
    rng = np.random.default_rng(1)
    samples, y = rng.normal(size=(30, 9, 4)), rng.normal(size=(30, 4))
    for fair in (False, True):
        np.testing.assert_allclose(energy_score(samples, y, fair, chunk=7), energy_score_ref(samples, y, fair),
                                   rtol=1e-10)
    # in one dimension the energy score is the CRPS
    s1, y1 = rng.normal(size=(20, 11)), rng.normal(size=20)
    np.testing.assert_allclose(energy_score(s1[:, :, None], y1[:, None]), crps_ensemble(s1, y1), rtol=1e-10)


def test_pit_ranks_and_ties():
    rng = np.random.default_rng(0)
    pit = pit_values(np.array([[1.0, 2.0, 3.0]] * 200), np.full(200, 2.5), rng)
    assert ((pit >= 0.5) & (pit < 0.75)).all()  # rank 2 of 0..3 → [2/4, 3/4)
    # y = 2 ties with two members: rank uniform on {1, 2, 3} → PIT uniform on [0.2, 0.8)
    pit = pit_values(np.array([[1.0, 2.0, 2.0, 3.0]] * 30_000), np.full(30_000, 2.0), rng)
    assert pit.min() >= 0.2 and pit.max() < 0.8
    counts = np.histogram(pit, bins=3, range=(0.2, 0.8))[0] / len(pit)
    np.testing.assert_allclose(counts, 1 / 3, atol=0.01)


def test_pit_uniformity_detects_calibration():
    rng = np.random.default_rng(0)
    y = rng.normal(size=3000)
    calibrated = pit_uniformity(pit_values(rng.normal(size=(3000, 19)), y, rng))
    assert calibrated.counts.sum() == 3000 and calibrated.expected == 300
    assert calibrated.chi2_pvalue > 0.01 and calibrated.ks_pvalue > 0.01
    narrow = pit_uniformity(pit_values(0.5 * rng.normal(size=(3000, 19)), y, rng))  # under-dispersed: U shape
    assert narrow.chi2_pvalue < 1e-6
    assert narrow.counts[0] > 2 * narrow.counts[5] and narrow.counts[-1] > 2 * narrow.counts[4]


def test_interval_coverage_hand_computed():
    samples = np.tile(np.arange(1.0, 102.0), (4, 1))  # quantiles by linear interpolation: q_p = 1 + 100 p
    y = np.array([26.0, 80.0, 5.0, 96.0])  # 50 %: [26, 76]; 90 %: [6, 96] (bounds included)
    assert interval_coverage(samples, y) == {0.5: 0.25, 0.9: 0.75}


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="does not match"):
        crps_ensemble(np.zeros((3, 4)), np.zeros(2))
    with pytest.raises(ValueError, match="non-finite"):
        crps_ensemble(np.array([[np.nan, 1.0]]), np.zeros(1))
    with pytest.raises(ValueError, match="y contains"):
        crps_ensemble(np.zeros((1, 2)), np.array([np.inf]))
    with pytest.raises(ValueError, match="at least 2 members"):
        crps_ensemble(np.zeros((2, 1)), np.zeros(2), fair=True)
    with pytest.raises(ValueError, match=r"\(n, m, d\)"):
        energy_score(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="coverage level"):
        interval_coverage(np.zeros((2, 3)), np.zeros(2), levels=(1.5,))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        pit_uniformity(np.array([0.2, 1.3]))
