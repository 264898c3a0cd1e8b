"""Forecast targets (hand-made prices, gaps, parity with the probe targets) and the three sampling baselines (causality,
GARCH-t parameter recovery and filter parity with ``arch``, bootstrap blocks, scoring)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fin_ia_models.data.schema import with_meta
from fin_ia_models.evaluation.forecast_baselines import (BlockBootstrapBaseline, ForecastBaselineConfig,
                                                         GarchTBaseline, RandomWalkBaseline, make_baselines,
                                                         score_forecasts)
from fin_ia_models.evaluation.forecast_scores import crps_ensemble, interval_coverage
from fin_ia_models.evaluation.forecast_targets import (forecast_targets, log_returns, origin_positions, path_targets,
                                                       realized_paths)
from fin_ia_models.world_model.probes import probe_targets

HOUR = 3_600_000
T0 = 1_704_067_200_000


def frame(closes, stamps=None) -> pd.DataFrame:
    closes = np.asarray(closes, np.float64)
    stamps = T0 + HOUR * np.arange(len(closes)) if stamps is None else np.asarray(stamps)
    out = pd.DataFrame({"timestamp": stamps.astype(np.int64), "open": closes, "high": closes, "low": closes,
                        "close": closes, "volume": 1.0})
    return with_meta(out, "TEST/USDT", "1h")


def test_targets_hand_computed_with_gap_and_end():
    closes = [100.0, 110.0, 121.0, 108.9, 108.9, 119.79]  # r = ln1.1, ln1.1, ln0.9, 0, ln1.1
    candles = frame(closes)
    ends = T0 + HOUR * np.array([0, 1, 4])
    t2 = forecast_targets(candles, ends[:2], 2)
    np.testing.assert_allclose(t2["ret"], [2 * np.log(1.1), np.log(1.1) + np.log(0.9)])
    np.testing.assert_allclose(t2["rv"], [np.sqrt(2) * np.log(1.1), np.hypot(np.log(1.1), np.log(0.9))])
    t3 = forecast_targets(candles, ends, 3)
    assert t3["ret"].iloc[1] == pytest.approx(np.log(0.99))
    assert np.isnan(t3["ret"].iloc[2]) and np.isnan(t3["rv"].iloc[2])  # past the last candle
    # drop the candle at +3 h: a horizon across the gap is NaN, one before it is untouched
    gapped = frame(np.delete(closes, 3), np.delete(T0 + HOUR * np.arange(6), 3))
    tg = forecast_targets(gapped, ends[:2], 2)
    assert tg["ret"].iloc[0] == pytest.approx(2 * np.log(1.1)) and np.isnan(tg["ret"].iloc[1])
    assert np.isnan(realized_paths(gapped, ends[1:2], 2)).all()


def test_targets_agree_with_probe_targets():
    rng = np.random.default_rng(0)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    stamps = np.delete(T0 + HOUR * np.arange(310), [50, 51, 120, 121, 122, 200, 260, 261, 262, 263])
    candles = frame(closes, stamps)
    ends = stamps[::7]
    ours = forecast_targets(candles, ends, 24)
    theirs = probe_targets(candles, ends, "1h", horizon=24)
    assert ours["rv"].isna().equals(theirs["rv_next"].isna()) and ours["rv"].isna().sum() > 5
    ok = ours["rv"].notna()
    np.testing.assert_allclose(np.log(ours["rv"][ok] + 1e-12), theirs["rv_next"][ok], rtol=1e-12)
    np.testing.assert_array_equal((ours["ret"][ok] > 0).astype(float), theirs["sign_next"][ok])


def test_log_returns_are_causal_and_errors_named():
    rng = np.random.default_rng(1)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 50)))
    base = log_returns(frame(closes))
    perturbed = closes.copy()
    perturbed[30:] *= rng.uniform(0.5, 2.0, 20)
    np.testing.assert_array_equal(log_returns(frame(perturbed))[:30], base[:30])
    with pytest.raises(ValueError, match="not candle open times"):
        origin_positions(frame(closes), np.array([T0 + 1]))
    with pytest.raises(ValueError, match="horizon_candles must be >= 1"):
        forecast_targets(frame(closes), np.array([T0]), 0)
    with pytest.raises(ValueError, match="timeframe is unknown"):
        log_returns(pd.DataFrame({"timestamp": [T0, T0 + HOUR], "close": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="close must be finite and > 0"):
        log_returns(frame([1.0, -2.0, 3.0]))


def simulate_garch_t(n, mu, omega, alpha, beta, nu, seed):
    """Plain-loop GARCH(1,1)-t simulator (test reference, independent of the baseline's sampler)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(nu, n + 500) * np.sqrt((nu - 2) / nu)
    var, out = omega / (1 - alpha - beta), np.empty(n + 500)
    for t in range(n + 500):
        out[t] = np.sqrt(var) * z[t]
        var = omega + alpha * out[t] ** 2 + beta * var
    return mu + out[500:]


@pytest.fixture(scope="module")
def garch_series():
    return simulate_garch_t(12_000, mu=1e-4, omega=2e-6, alpha=0.08, beta=0.9, nu=6.0, seed=0)


def test_garch_recovers_simulated_parameters(garch_series):
    params = GarchTBaseline().fit(garch_series[:10_000]).params
    assert params["alpha"] == pytest.approx(0.08, abs=0.025)
    assert params["beta"] == pytest.approx(0.90, abs=0.03)
    assert params["nu"] == pytest.approx(6.0, abs=1.5)
    unconditional = params["omega"] / (1 - params["alpha"] - params["beta"])
    assert unconditional == pytest.approx(2e-6 / 0.02, rel=0.25)


def test_garch_filter_matches_arch(garch_series):
    from arch import arch_model

    model = GarchTBaseline().fit(garch_series[:10_000])
    p = model.params
    am = arch_model(garch_series, mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False)
    fixed = am.fix([p["mu"], p["omega"], p["alpha"], p["beta"], p["nu"]])
    backcast = am.volatility.backcast(garch_series - garch_series.mean())  # what ``fix`` starts from
    ours = model.filter_variance(garch_series, initial_variance=backcast)[:-1]
    np.testing.assert_allclose(ours, np.asarray(fixed.conditional_volatility) ** 2, rtol=1e-9)


@pytest.mark.parametrize("baseline_cls", [BlockBootstrapBaseline, GarchTBaseline, RandomWalkBaseline])
def test_baselines_are_causal(baseline_cls, garch_series):
    returns = garch_series.copy()
    returns[[10_050, 10_400]] = np.nan  # gaps in the history
    model = baseline_cls().fit(returns[:10_000])
    origins = np.array([10_000, 10_200, 10_500, 10_800])
    base = model.sample_paths_batch(returns, origins, 24, 50, np.random.default_rng(7))
    assert base.shape == (4, 50, 24) and np.isfinite(base).all()
    perturbed = returns.copy()
    perturbed[10_501:] = 5 * perturbed[10_501:] + 0.01  # the future of origin 10_500
    again = model.sample_paths_batch(perturbed, origins, 24, 50, np.random.default_rng(7))
    np.testing.assert_array_equal(again[:3], base[:3])
    # one origin through the single-origin interface: the same draws as the batch
    single = model.sample_paths(returns[:10_201], 24, 50, np.random.default_rng(7))
    first = model.sample_paths_batch(returns, origins[1:2], 24, 50, np.random.default_rng(7))[0]
    np.testing.assert_array_equal(single, first)


def test_garch_one_step_forecast_is_the_hand_recursion(garch_series):
    model = GarchTBaseline().fit(garch_series[:10_000])
    p = model.params
    shocked = garch_series[:10_001].copy()
    shocked[-1] = 0.05  # a 5 % hour
    previous = model.filter_variance(shocked)[-2]  # σ²_t, from returns before the shock
    expected = p["omega"] + p["alpha"] * (0.05 - p["mu"]) ** 2 + p["beta"] * previous  # σ²_{t+1}
    assert model.filter_variance(shocked)[-1] == pytest.approx(expected, rel=1e-12)
    draws = model.sample_paths(shocked, 1, 20_000, np.random.default_rng(0))[:, 0]
    assert draws.std() == pytest.approx(np.sqrt(expected), rel=0.03)
    assert draws.mean() == pytest.approx(p["mu"], abs=3 * np.sqrt(expected / 20_000))


def test_bootstrap_paths_are_circular_blocks_of_training_returns():
    train = np.random.default_rng(3).normal(size=100)
    model = BlockBootstrapBaseline(ForecastBaselineConfig(block_length=5, min_train_returns=10)).fit(train)
    paths = model.sample_paths_batch(np.zeros(3), np.array([0, 2]), 12, 40, np.random.default_rng(0))
    assert paths.shape == (2, 40, 12) and np.isin(paths, train).all()
    for path in paths.reshape(-1, 12):
        for start in (0, 5, 10):  # blocks of 5 (the last one cut to 2)
            i = int(np.flatnonzero(train == path[start])[0])
            block = path[start:start + 5]
            np.testing.assert_array_equal(block, train[(i + np.arange(len(block))) % 100])


def test_random_walk_uses_training_volatility():
    train = np.random.default_rng(4).normal(0, 0.02, 1000)
    model = RandomWalkBaseline().fit(train)
    assert model.sigma_ == pytest.approx(np.std(train, ddof=1))
    paths = model.sample_paths(train, 24, 20_000, np.random.default_rng(0))
    assert paths.std() == pytest.approx(model.sigma_, rel=0.01)


def test_score_forecasts_matches_direct_scores_and_drops_incomplete_rows():
    rng = np.random.default_rng(5)
    paths = rng.normal(0, 0.01, (6, 30, 4))
    realized = rng.normal(0, 0.01, (6, 4))
    realized[2] = np.nan
    scores = score_forecasts(paths, realized, np.random.default_rng(0))
    keep = [0, 1, 3, 4, 5]
    ret_f, rv_f = path_targets(paths[keep])
    ret_y, rv_y = path_targets(realized[keep])
    assert scores["n_scored"] == 5 and scores["n_dropped"] == 1
    assert scores["crps_ret"] == pytest.approx(crps_ensemble(ret_f, ret_y).mean())
    assert scores["crps_rv_fair"] == pytest.approx(crps_ensemble(rv_f, rv_y, fair=True).mean())
    assert scores["coverage_rv_90"] == interval_coverage(rv_f, rv_y)[0.9]
    assert scores["pit_ret"].shape == (5,)
    with pytest.raises(ValueError, match="no complete realized path"):
        score_forecasts(paths[:1], np.full((1, 4), np.nan), rng)


def test_baseline_errors_are_named():
    with pytest.raises(RuntimeError, match="call fit"):
        RandomWalkBaseline().sample_paths(np.zeros(3), 2, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least 500 finite"):
        GarchTBaseline().fit(np.zeros(100))
    with pytest.raises(ValueError, match="block_length must be >= 1"):
        ForecastBaselineConfig(block_length=0)
    model = make_baselines()[2].fit(np.random.default_rng(0).normal(size=50))
    with pytest.raises(ValueError, match="origins must index returns"):
        model.sample_paths_batch(np.zeros(5), np.array([5]), 2, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        model.sample_paths(np.zeros(5), 0, 2, np.random.default_rng(0))
