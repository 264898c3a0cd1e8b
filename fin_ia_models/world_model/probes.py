"""Linear probes on frozen embeddings: ridge regression for next-24 h realized volatility (R²), logistic regression
for next-24 h return sign (accuracy, ROC AUC with its standard error), a sanity probe (the CURRENT 24 h realized vol,
which an embedding that carries the market's state must recover), and three baselines on the same rows: raw features
(last 24 hourly returns and volumes relative to their trailing mean: unit-free, so a probe fit on BTC/ETH applies
to any symbol), the single feature "log realized vol of the last 24 h", and predicting the training mean.

Linear probing as the standard read-out of self-supervised representations (e.g. I-JEPA, Assran et al. 2023). The
TARGETS look forward and are built ONLY here (``probe_targets``), apart from any feature code: for a token ending at
T (open time of its last candle, see ``exo_signals.py``) the horizon is the ``horizon`` candles opening after T::

    rv_next(T)   = log sqrt( Σ_{i=1..H} r_{T+i}² ),   r = log close-to-close return   (log realized volatility)
    sign_next(T) = 1[ log(close_{T+H} / close_T) > 0 ]
    rv_now(T)    = log sqrt( Σ_{i=0..H-1} r_{T-i}² )   (the sanity target; also the single-feature baseline)

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


def trailing_rv(candles: pd.DataFrame, end_timestamps: np.ndarray, timeframe: str, horizon: int = 24) -> np.ndarray:
    """rv_now: log realized vol of the ``horizon`` returns up to and including the candle at T (NaN where those
    candles are incomplete). Causal: only candles opening at or before T."""
    tf = timeframe_ms(timeframe)
    ts = candles["timestamp"].to_numpy(np.int64)
    close = candles["close"].to_numpy(np.float64)
    pos, found = _positions(candles, np.asarray(end_timestamps, np.int64))
    ok = found & (pos >= horizon)
    ok[ok] &= ts[pos[ok]] - ts[pos[ok] - horizon] == horizon * tf
    logret = np.r_[np.nan, np.diff(np.log(close))]
    cs = np.r_[0.0, np.cumsum(np.nan_to_num(logret**2))]
    out = np.full(len(pos), np.nan)
    p = pos[ok]
    out[ok] = np.log(np.sqrt(cs[p + 1] - cs[p + 1 - horizon]) + 1e-12)
    return out


def probe_targets(candles: pd.DataFrame, end_timestamps: np.ndarray, timeframe: str, horizon: int = 24) -> pd.DataFrame:
    """``end_timestamp, rv_next, sign_next, rv_now`` (NaN where the needed ``horizon`` candles are incomplete)."""
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
    now = trailing_rv(candles, ends, timeframe, horizon)
    return pd.DataFrame({"end_timestamp": ends, "rv_next": rv, "sign_next": sign, "rv_now": now})


def relative_log_volume(candles: pd.DataFrame, window: int = 720, min_periods: int = 24) -> np.ndarray:
    """log(volume_t / mean volume of the trailing ``window`` candles ending at t): unit-free (the same for volume in
    any unit), causal (only candles up to t). NaN before ``min_periods`` candles or where the volume is 0."""
    volume = candles["volume"].to_numpy(np.float64)
    trail = pd.Series(volume).rolling(window, min_periods=min_periods).mean().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = volume / trail
        return np.where(rel > 0, np.log(rel), np.nan)


def raw_features(candles: pd.DataFrame, end_timestamps: np.ndarray, n_lags: int = 24) -> np.ndarray:
    """(n, 2·n_lags): the last ``n_lags`` log returns and log relative volumes (``relative_log_volume``) up to and
    including the candle at T (NaN rows where history is short). Unit-free: the probe transfers across symbols."""
    close = candles["close"].to_numpy(np.float64)
    logvol = relative_log_volume(candles)
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


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of a ROC AUC (independent rows assumed: adjacent tokens' 24 h horizons
    overlap, so the true error is somewhat larger)."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg)
    return float(np.sqrt(max(var, 0.0)))


def evaluate_probes(
    x_train: np.ndarray, targets_train: pd.DataFrame, x_test: np.ndarray, targets_test: pd.DataFrame,
    alpha: float = 1.0, l2: float = 1.0, groups: np.ndarray | None = None,
) -> dict[str, float]:
    """Fit the probes on train rows, score on test rows; rows with any NaN (features or target) are dropped.
    Keys: ``rv_r2``, ``sign_accuracy``, ``sign_auc``, ``sign_auc_se``, ``rv_now_r2`` (sanity), ``n_test_*``. With
    ``groups`` (one label per test row, e.g. the symbol) every key is also given per group as ``{group}:{key}``."""
    scores: dict[str, float] = {}
    labels = [None] if groups is None else [None, *sorted(set(groups))]
    for name in ("rv_next", "sign_next", "rv_now"):
        ok_tr = np.isfinite(x_train).all(1) & targets_train[name].notna().to_numpy()
        ok_te = np.isfinite(x_test).all(1) & targets_test[name].notna().to_numpy()
        if ok_tr.sum() < 10 or ok_te.sum() < 10:
            raise ValueError(f"too few rows for the {name} probe: train {ok_tr.sum()}, test {ok_te.sum()}")
        xtr, xte = _standardise(x_train[ok_tr], x_test[ok_te])
        ytr, yte = targets_train[name].to_numpy()[ok_tr], targets_test[name].to_numpy()[ok_te]
        if name == "sign_next":
            w = fit_logistic(xtr, ytr, l2)
        else:
            w = fit_ridge(xtr, ytr, alpha)
        out = np.c_[xte, np.ones(len(xte))] @ w
        g_te = None if groups is None else np.asarray(groups)[ok_te]
        for label in labels:
            rows = slice(None) if label is None else g_te == label
            y, o, pre = yte[rows], out[rows], "" if label is None else f"{label}:"
            if len(y) < 10:
                continue
            if name == "rv_next":
                scores[f"{pre}rv_r2"] = r2_score(y, o)
                scores[f"{pre}mean_rv_r2"] = r2_score(y, np.full(len(y), ytr.mean()))  # the training-mean baseline
            elif name == "rv_now":
                scores[f"{pre}rv_now_r2"] = r2_score(y, o)
            else:
                scores[f"{pre}sign_accuracy"] = float(((o > 0) == (y == 1)).mean())
                auc = roc_auc(y, o)
                scores[f"{pre}sign_auc"] = auc
                scores[f"{pre}sign_auc_se"] = auc_standard_error(auc, int((y == 1).sum()), int((y == 0).sum()))
            scores[f"{pre}n_test_{name}"] = float(len(y))
    return scores


GATE_METRIC = "val_jepa_minus_single_rv_r2"


def gate_metrics(val_scores: dict[str, float]) -> dict[str, float]:
    """The ``jepa_encoder`` gate's metric from validation-window probe scores (``probe_scores(..., window="val")``):
    JEPA probe R² of next-24 h realized vol minus the single-feature baseline's. > 0 is required for promotion."""
    return {GATE_METRIC: val_scores["jepa_rv_r2"] - val_scores["single_rv_r2"]}


def probe_windows(split, window: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(fit range, score range) in ms: ``val`` fits on the training window and scores the validation window (how
    choices are made); ``test`` fits on training + validation and scores the test window (reported once)."""
    train_start, train_end = split.range_ms("train")
    if window == "val":
        return (train_start, train_end), split.range_ms("val")
    if window == "test":
        return (train_start, split.range_ms("val")[1]), split.range_ms("test")
    raise ValueError(f"unknown probe window {window!r}: expected val or test")


def probe_scores(encoders: dict, tokens: dict[str, pd.DataFrame], exo: dict[str, pd.DataFrame] | None,
                 candles: dict[str, pd.DataFrame], split, window: str = "test",
                 fit_symbols: list[str] | None = None) -> dict[str, float]:
    """Probe scores of every encoder in ``encoders`` (name → FinJEPA, e.g. {"jepa": model}) and of the baselines
    ``raw`` and ``single`` (plus ``mean_rv_r2``), as ``{name}_{key}`` pooled over all symbols and
    ``{symbol}:{name}_{key}`` per symbol. Probes are fit on the tokens of ``fit_symbols`` (default: all) ending in
    the window's fit range and scored on every symbol's tokens ending in its score range (``probe_windows``);
    embeddings run causally over each whole series."""
    from fin_ia_models.world_model.embed import embed_sequence  # torch only where embeddings are made

    (fit_lo, fit_hi), (score_lo, score_hi) = probe_windows(split, window)
    fit_symbols = list(tokens) if fit_symbols is None else fit_symbols
    names = [*encoders, "raw", "single"]
    parts = {n: ([], [], [], []) for n in names}
    groups = []
    for symbol, frame in sorted(tokens.items()):
        series = candles[symbol]
        ts = frame["end_timestamp"].to_numpy(np.int64)
        targets = probe_targets(series, ts, series.attrs["timeframe"])
        features = {n: embed_sequence(m, frame, None if exo is None else exo[symbol]).filter(like="emb_")
                    .to_numpy(np.float64) for n, m in encoders.items()}
        features["raw"] = raw_features(series, ts)
        features["single"] = targets[["rv_now"]].to_numpy(np.float64)
        fit_rows = (ts >= fit_lo) & (ts < fit_hi) & (symbol in fit_symbols)
        score_rows = (ts >= score_lo) & (ts < score_hi)
        groups.extend([symbol] * int(score_rows.sum()))
        for n, x in features.items():
            parts[n][0].append(x[fit_rows])
            parts[n][1].append(targets[fit_rows])
            parts[n][2].append(x[score_rows])
            parts[n][3].append(targets[score_rows])
    scores: dict[str, float] = {}
    for n, (xtr, ytr, xte, yte) in parts.items():
        result = evaluate_probes(np.concatenate(xtr), pd.concat(ytr), np.concatenate(xte), pd.concat(yte),
                                 groups=np.array(groups))
        for key, value in result.items():
            group, _, metric = key.rpartition(":")
            if metric.startswith("mean_rv_r2"):  # feature-free: reported once, under "mean"
                scores[f"{group}:mean_rv_r2" if group else "mean_rv_r2"] = value
                continue
            scores[f"{group}:{n}_{metric}" if group else f"{n}_{metric}"] = value
        scores[f"{n}_n_train_rows"] = float(sum(len(x) for x in xtr))
    return scores
