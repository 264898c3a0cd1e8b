"""Out-of-sample forecast evaluation of the multiverse against the three baselines, on exactly the same targets.

For a time window [start, end) and every usable origin token in it whose scored horizons end before ``end`` (so a
validation score never reads test candles), each model samples m hourly return paths of ``max(horizons)`` candles:
the multiverse through ``MultiverseModel.sample`` (the first candles of its decoded futures), the baselines (block
bootstrap, GARCH(1,1)-t, random walk; ``evaluation.forecast_baselines``) fitted once on the symbol's training-window
returns and conditioned on returns up to the origin. Every path is scored against the realized path by
``evaluation.forecast_baselines.score_forecasts`` (CRPS of the h-candle return and realized vol, standard and fair;
energy score of the joint path; 50/90 % coverage; PIT), per symbol and pooled over symbols. Origins whose realized
horizon is incomplete (a gap, the end of the data) are dropped for every model alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fin_ia_models.data.schema import timeframe_ms
from fin_ia_models.evaluation.forecast_baselines import make_baselines, score_forecasts
from fin_ia_models.evaluation.forecast_targets import log_returns, origin_positions, realized_paths
from fin_ia_models.multiverse.context import SymbolContext
from fin_ia_models.multiverse.trajectories import Trajectories

MODEL = "multiverse"
SCORE_KEYS = ("crps_ret", "crps_rv", "crps_ret_fair", "crps_rv_fair", "energy", "coverage_ret_50", "coverage_ret_90",
              "coverage_rv_50", "coverage_rv_90", "pit_ret_ks_pvalue", "pit_rv_ks_pvalue", "n_scored")


def fit_baselines(candles: pd.DataFrame, train_start_ms: int, train_end_ms: int) -> list:
    """The three baselines fitted on the log returns of ``candles`` opening in [train_start_ms, train_end_ms)."""
    returns = log_returns(candles)
    ts = candles["timestamp"].to_numpy(np.int64)
    train = returns[(ts >= train_start_ms) & (ts < train_end_ms)]
    return [baseline.fit(train) for baseline in make_baselines()]


@dataclass
class WindowForecasts:
    """Sampled and realized hourly paths of one symbol's scored origins in one window."""

    end_timestamp: np.ndarray  # (n,) origins
    realized: np.ndarray  # (n, Hmax) realized hourly log returns
    paths: dict[str, np.ndarray]  # model → (n, m, Hmax) sampled hourly log returns
    trajectories: Trajectories  # the multiverse's futures (for fan charts)


@dataclass
class Evaluation:
    """Scores per (symbol or "all", model, horizon in candles), plus the PIT values of the pooled scores."""

    scores: dict[tuple[str, str, int], dict[str, float]] = field(default_factory=dict)
    pit: dict[tuple[str, int], dict[str, np.ndarray]] = field(default_factory=dict)  # (model, h) → ret/rv PIT
    forecasts: dict[str, WindowForecasts] = field(default_factory=dict)

    def metrics(self, prefix: str, symbol: str = "all") -> dict[str, float]:
        """Flat ``{prefix}_{model}_{score}_{h}c`` metrics, and ``{prefix}_skill_{crps}_{h}c`` = 1 − multiverse CRPS /
        best baseline CRPS (> 0: the multiverse is better; ≥ 0.05 is the issue's goal)."""
        out: dict[str, float] = {}
        for (sym, model, h), scores in self.scores.items():
            if sym == symbol:
                out.update({f"{prefix}_{model}_{k}_{h}c": v for k, v in scores.items()})
        for (sym, model, h) in self.scores:
            if sym == symbol and model == MODEL:
                for key in ("crps_ret", "crps_rv"):
                    best = min(v[key] for (s, m, hh), v in self.scores.items() if s == sym and hh == h and m != MODEL)
                    out[f"{prefix}_skill_{key}_{h}c"] = 1.0 - self.scores[(sym, MODEL, h)][key] / best
        return out


def scored_origins(context: SymbolContext, candles: pd.DataFrame, start_ms: int, end_ms: int,
                   horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows of ``context``, realized paths (n, horizon)) of usable origins in [start_ms, end_ms) whose next
    ``horizon`` candles open before ``end_ms`` and are complete."""
    tf = timeframe_ms(candles.attrs["timeframe"])
    ts = context.end_timestamp
    rows = np.flatnonzero(context.usable & (ts >= start_ms) & (ts + horizon * tf < end_ms))
    if len(rows) == 0:
        return rows, np.zeros((0, horizon))
    realized = realized_paths(candles, ts[rows], horizon)
    keep = np.isfinite(realized).all(axis=1)
    return rows[keep], realized[keep]


def window_forecasts(model, context: SymbolContext, candles: pd.DataFrame, baselines: list, start_ms: int,
                     end_ms: int, n_futures: int, seed: int, horizon: int) -> WindowForecasts | None:
    """Sample every model on the scored origins of one symbol and window (None when there is none)."""
    rows, realized = scored_origins(context, candles, start_ms, end_ms, horizon)
    if len(rows) == 0:
        return None
    ts = context.end_timestamp[rows]
    # the model's own horizon (not the fewest tokens covering ``horizon``): the same noise as the stored futures,
    # so the futures scored here are exactly those of the multiverse_trajectories frame
    traj = model.sample(ts, context.features[rows], n_futures, model.config.horizon, seed)
    paths = {MODEL: traj.paths(horizon)}
    returns = log_returns(candles)
    origins = origin_positions(candles, ts)
    for i, baseline in enumerate(baselines):
        rng = np.random.default_rng([seed, i, int(ts[0])])
        paths[baseline.name] = baseline.sample_paths_batch(returns, origins, horizon, n_futures, rng)
    return WindowForecasts(ts, realized, paths, traj)


def evaluate_window(model, contexts: Mapping[str, SymbolContext], candles: Mapping[str, pd.DataFrame],
                    baselines: Mapping[str, list], start_ms: int, end_ms: int, seed: int,
                    n_futures: int | None = None) -> Evaluation:
    """Score the multiverse and the baselines on [start_ms, end_ms) for every symbol and pooled ("all")."""
    horizons = model.config.eval_horizons
    n_futures = n_futures or model.config.n_eval_futures
    result = Evaluation()
    for symbol in sorted(contexts):
        forecasts = window_forecasts(model, contexts[symbol], candles[symbol], baselines[symbol], start_ms, end_ms,
                                     n_futures, seed, max(horizons))
        if forecasts is not None:
            result.forecasts[symbol] = forecasts
    if not result.forecasts:
        raise ValueError(f"no scorable origin in [{start_ms}, {end_ms}) ms for {sorted(contexts)}: the window has "
                         "no usable token with complete realized horizons")
    groups = {symbol: [f] for symbol, f in result.forecasts.items()}
    groups["all"] = list(result.forecasts.values())
    for symbol, parts in groups.items():
        realized = np.concatenate([p.realized for p in parts])
        for name in parts[0].paths:
            paths = np.concatenate([p.paths[name] for p in parts])
            for h in horizons:
                rng = np.random.default_rng([seed, h])  # PIT tie-breaking draws
                scores = score_forecasts(paths[:, :, :h], realized[:, :h], rng)
                result.scores[(symbol, name, h)] = {k: float(scores[k]) for k in SCORE_KEYS}
                if symbol == "all":
                    result.pit[(name, h)] = {"ret": scores["pit_ret"], "rv": scores["pit_rv"]}
    return result
