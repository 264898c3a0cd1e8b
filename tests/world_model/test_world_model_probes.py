"""Linear probes: closed-form ridge, IRLS logistic regression, AUC, forward-looking targets, causal raw features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fin_ia_models.world_model.probes import (
    evaluate_probes, fit_logistic, fit_ridge, probe_targets, r2_score, raw_features, roc_auc,
)

HOUR = 3_600_000
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance"  # the repo parent holds shared/


def _candles(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame({"timestamp": np.arange(n, dtype=np.int64) * HOUR, "open": close, "high": close,
                         "low": close, "close": close, "volume": rng.uniform(1, 10, n)})


def test_ridge_matches_least_squares_and_shrinks():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 3.0 + rng.normal(0, 0.1, 200)
    w0 = fit_ridge(x, y, alpha=0.0)
    np.testing.assert_allclose(w0, np.linalg.lstsq(np.c_[x, np.ones(200)], y, rcond=None)[0], rtol=1e-8)
    assert np.linalg.norm(fit_ridge(x, y, alpha=1e4)[:3]) < 0.5 * np.linalg.norm(w0[:3])
    assert r2_score(y, np.c_[x, np.ones(200)] @ w0) > 0.99


def test_logistic_recovers_direction_and_auc_hand_example():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 2))
    y = (rng.random(2000) < 1 / (1 + np.exp(-(2 * x[:, 0] - x[:, 1])))).astype(float)
    w = fit_logistic(x, y, l2=1e-6)
    np.testing.assert_allclose(w[:2], [2.0, -1.0], atol=0.3)
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="0 or 1"):
        fit_logistic(x, y * 2)


def test_targets_hand_computed_and_features_causal():
    candles = _candles(100)
    close = candles["close"].to_numpy()
    ends = np.array([10, 50, 90], dtype=np.int64) * HOUR
    tg = probe_targets(candles, ends, "1h", horizon=24)
    r = np.diff(np.log(close[50:75]))  # the 24 returns after the candle at 50
    assert tg["rv_next"].iloc[1] == pytest.approx(np.log(np.sqrt((r**2).sum())))
    assert tg["sign_next"].iloc[1] == float(close[74] > close[50])
    assert np.isnan(tg["rv_next"].iloc[2])  # horizon runs past the data
    feats = raw_features(candles, ends, n_lags=24)
    assert np.isnan(feats[0]).all()  # fewer than 24 past candles
    shocked = candles.copy()
    shocked.loc[51:, ["close", "volume"]] *= 2.0
    np.testing.assert_array_equal(raw_features(shocked, ends, 24)[1], feats[1])  # features ignore the future
    assert feats[1, 0] == pytest.approx(np.log(close[50] / close[49]))


def test_evaluate_probes_on_informative_features():
    candles = _candles(3000, seed=1)
    ends = np.arange(30, 2960, dtype=np.int64) * HOUR
    tg = probe_targets(candles, ends, "1h")
    x = np.c_[tg["rv_next"].to_numpy() + np.random.default_rng(0).normal(0, 0.05, len(tg)), raw_features(candles, ends)]
    s = evaluate_probes(x[:2000], tg.iloc[:2000], x[2000:], tg.iloc[2000:])
    assert s["rv_r2"] > 0.5 and 0.0 <= s["sign_auc"] <= 1.0 and 0.0 <= s["sign_accuracy"] <= 1.0


def test_raw_feature_probe_on_real_candles():
    path = DATA / "BTCUSDT_1h.csv"
    if not path.exists():
        pytest.skip(f"real candles not found at {path}")
    raw = pd.read_csv(path).rename(columns={"timestamp_ms": "timestamp"}).iloc[-8000:].reset_index(drop=True)
    ends = raw["timestamp"].to_numpy(np.int64)[30:-30:4]
    tg = probe_targets(raw, ends, "1h")
    x = raw_features(raw, ends)
    n = len(ends) * 3 // 4
    s = evaluate_probes(x[:n], tg.iloc[:n], x[n:], tg.iloc[n:])
    assert s["rv_r2"] > 0.0  # volatility clusters: past |returns| predict next-day realized vol
