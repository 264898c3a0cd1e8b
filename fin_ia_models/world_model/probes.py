"""Linear probes on frozen embeddings: ridge regression for next-24 h realized volatility (R²), logistic regression
for next-24 h return sign (accuracy, ROC AUC), and the raw-feature baseline (last 24 hourly returns and volumes).

Linear probing as the standard read-out of self-supervised representations (e.g. I-JEPA, Assran et al. 2023). The
TARGETS look forward and are built ONLY here (``probe_targets``), apart from any feature code: for a token ending at
T (open time of its last candle, see ``exo_signals.py``) the horizon is the ``horizon`` candles opening after T::

    rv_next(T)   = log sqrt( Σ_{i=1..H} r_{T+i}² ),   r = log close-to-close return   (log realized volatility)
    sign_next(T) = 1[ log(close_{T+H} / close_T) > 0 ]

Closed-form ridge and a Newton-method (IRLS) logistic regression in numpy, with features standardised on the train
split only (sklearn is not a dependency).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fin_ia_models.data.schema import timeframe_ms


def _positions(candles: pd.DataFrame, end_timestamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ts = candles["timestamp"].to_numpy(np.int64)
    pos = np.searchsorted(ts, end_timestamps)
    found = (pos < len(ts)) & (ts[np.minimum(pos, len(ts) - 1)] == end_timestamps)
    return pos, found


def probe_targets(candles: pd.DataFrame, end_timestamps: np.ndarray, timeframe: str, horizon: int = 24) -> pd.DataFrame:
    """``end_timestamp, rv_next, sign_next`` (NaN where the next ``horizon`` candles are incomplete)."""
    tf = timeframe_ms(timeframe)
    ts = candles["timestamp"].to_numpy(np.int64)
    close = candles["close"].to_numpy(np.float64)
    ends = np.asarray(end_timestamps, np.int64)
    pos, found = _positions(candles, ends)
    ok = found & (pos + horizon < len(ts))
    ok[ok] &= ts[pos[ok] + horizon] - ts[pos[ok]] == horizon * tf  # no gap inside the horizon
    logret = np.r_[np.nan, np.diff(np.log(close))]
    cs = np.r_[0.0, np.cumsum(np.nan_to_num(logret**2))]
    rv = np.full(len(ends), np.nan)
    sign = np.full(len(ends), np.nan)
    p = pos[ok]
    rv[ok] = np.log(np.sqrt(cs[p + horizon + 1] - cs[p + 1]) + 1e-12)
    sign[ok] = (close[p + horizon] > close[p]).astype(np.float64)
    return pd.DataFrame({"end_timestamp": ends, "rv_next": rv, "sign_next": sign})


def raw_features(candles: pd.DataFrame, end_timestamps: np.ndarray, n_lags: int = 24) -> np.ndarray:
    """(n, 2·n_lags): the last ``n_lags`` log returns and log1p volumes up to and including the candle at T
    (NaN rows where history is short)."""
    close = candles["close"].to_numpy(np.float64)
    logvol = np.log1p(candles["volume"].to_numpy(np.float64))
    logret = np.r_[np.nan, np.diff(np.log(close))]
    pos, found = _positions(candles, np.asarray(end_timestamps, np.int64))
    out = np.full((len(pos), 2 * n_lags), np.nan)
    ok = found & (pos >= n_lags)
    idx = pos[ok, None] - np.arange(n_lags)[None]  # (n_ok, n_lags), most recent first
    out[ok] = np.concatenate([logret[idx], logvol[idx]], axis=1)
    return out


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = train.mean(0), train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return (train - mu) / sd, (test - mu) / sd


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Closed-form ridge with an unpenalised intercept: returns w (d + 1,), prediction = [x, 1] @ w."""
    xa = np.c_[x, np.ones(len(x))]
    reg = alpha * np.eye(xa.shape[1])
    reg[-1, -1] = 0.0
    return np.linalg.solve(xa.T @ xa + reg, xa.T @ y)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50, tol: float = 1e-8) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method (IRLS); returns w (d + 1,), logit = [x, 1] @ w."""
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("logistic regression labels must be 0 or 1")
    xa = np.c_[x, np.ones(len(x))]
    w = np.zeros(xa.shape[1])
    reg = l2 * np.eye(xa.shape[1])
    reg[-1, -1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(xa @ w)))
        grad = xa.T @ (p - y) + reg @ w
        hess = (xa * (p * (1 - p))[:, None]).T @ xa + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < tol:
            break
    return w


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    return float(1.0 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney U / (n_pos · n_neg), ties counted half (average ranks)."""
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both classes in y")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate_probes(
    x_train: np.ndarray, targets_train: pd.DataFrame, x_test: np.ndarray, targets_test: pd.DataFrame,
    alpha: float = 1.0, l2: float = 1.0,
) -> dict[str, float]:
    """Fit both probes on train rows, score on test rows; rows with any NaN (features or target) are dropped."""
    scores: dict[str, float] = {}
    for name in ("rv_next", "sign_next"):
        ok_tr = np.isfinite(x_train).all(1) & targets_train[name].notna().to_numpy()
        ok_te = np.isfinite(x_test).all(1) & targets_test[name].notna().to_numpy()
        if ok_tr.sum() < 10 or ok_te.sum() < 10:
            raise ValueError(f"too few rows for the {name} probe: train {ok_tr.sum()}, test {ok_te.sum()}")
        xtr, xte = _standardise(x_train[ok_tr], x_test[ok_te])
        ytr, yte = targets_train[name].to_numpy()[ok_tr], targets_test[name].to_numpy()[ok_te]
        if name == "rv_next":
            w = fit_ridge(xtr, ytr, alpha)
            scores["rv_r2"] = r2_score(yte, np.c_[xte, np.ones(len(xte))] @ w)
        else:
            w = fit_logistic(xtr, ytr, l2)
            logit = np.c_[xte, np.ones(len(xte))] @ w
            scores["sign_accuracy"] = float(((logit > 0) == (yte == 1)).mean())
            scores["sign_auc"] = roc_auc(yte, logit)
        scores[f"n_test_{name}"] = float(ok_te.sum())
    return scores
