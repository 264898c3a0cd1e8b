"""Causal trading baselines on the regular candle grid, run through the same engine as the agents (``backtest.py``).

Dims: T candles, S symbols; inputs are ``closes`` (T, S) and ``valid`` (T, S) from ``backtest.candle_grid``. The
position at candle t uses closes up to close_t only (the candle at t has closed), and the engine makes it earn t → t + 1.

- flat: always 0; buy & hold: always 1 (the engine still closes it around gaps).
- Time-series momentum (Moskowitz, Ooi & Pedersen 2012, "Time series momentum", JFE 104): sign of the trailing
  ``lookback``-candle log return log(close_t / close_{t-L}); 0 when either endpoint candle is missing.
- Volatility targeting (Moreira & Muir 2017, "Volatility-managed portfolios", JF 72): long, scaled by
  clip(target_vol / σ̂_t, 0, 1) where σ̂_t is an exponentially weighted moving average of squared hourly log returns up
  to t (RiskMetrics 1996, with pandas' bias-free "adjusted" weights), annualised; 0 until ``vol_min_periods`` returns.
- Forecast mean signal: the position from a forecaster's predicted mean return, without an agent: its sign, or the
  prediction divided by a scale and clipped to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fin_ia_models.evaluation.performance import PERIODS_PER_YEAR
from fin_ia_models.utils.config_io import ConfigDict


@dataclass(frozen=True)
class TradingBaselineConfig(ConfigDict):
    """Parameters of the rule-based baselines (chosen a priori, never tuned on the test year)."""

    momentum_lookbacks: tuple[int, ...] = (24, 168)  # trailing windows in candles: 24 h and 7 d, as the issue asks
    target_vol: float = 0.25  # annualised volatility target: well under BTC/ETH's ~50-80 %, so the rule does scale down
    vol_halflife: float = 72.0  # EWMA half-life in candles (3 days): smooths intraday seasonality, reacts within days
    vol_min_periods: int = 24  # returns needed before the vol forecast is trusted; flat until then
    periods_per_year: int = PERIODS_PER_YEAR  # annualisation of the hourly vol forecast

    def __post_init__(self) -> None:
        if not self.momentum_lookbacks or min(self.momentum_lookbacks) < 1:
            raise ValueError(f"momentum_lookbacks must be non-empty and >= 1, got {self.momentum_lookbacks}")
        if not self.target_vol > 0:
            raise ValueError(f"target_vol must be > 0, got {self.target_vol}")
        if not self.vol_halflife > 0:
            raise ValueError(f"vol_halflife must be > 0, got {self.vol_halflife}")
        if self.vol_min_periods < 1:
            raise ValueError(f"vol_min_periods must be >= 1, got {self.vol_min_periods}")


def _grid(closes: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    closes = np.asarray(closes, np.float64)
    if closes.ndim == 1:
        closes = closes[:, None]
    valid = np.isfinite(closes) if valid is None else np.asarray(valid, bool).reshape(closes.shape)
    if (valid & ~(np.isfinite(closes) & (closes > 0))).any():
        raise ValueError("a valid candle needs a finite close > 0")
    return closes, valid


def grid_log_returns(closes: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(T, S) log(close_t / close_{t-1}); NaN at t = 0 and where either candle is missing (causal)."""
    closes, valid = _grid(closes, valid)
    logc = np.log(np.where(valid, closes, 1.0))
    out = np.full(closes.shape, np.nan)
    both = valid[1:] & valid[:-1]
    out[1:] = np.where(both, logc[1:] - logc[:-1], np.nan)
    return out


def flat_positions(closes: np.ndarray) -> np.ndarray:
    return np.zeros(np.asarray(closes).reshape(len(closes), -1).shape)


def buy_and_hold_positions(closes: np.ndarray) -> np.ndarray:
    return np.ones(np.asarray(closes).reshape(len(closes), -1).shape)


def momentum_positions(closes: np.ndarray, valid: np.ndarray | None, lookback: int) -> np.ndarray:
    """(T, S) sign of log(close_t / close_{t-lookback}); 0 where either close is missing or t < lookback."""
    if lookback < 1:
        raise ValueError(f"lookback must be >= 1, got {lookback}")
    closes, valid = _grid(closes, valid)
    logc = np.log(np.where(valid, closes, 1.0))
    out = np.zeros(closes.shape)
    both = valid[lookback:] & valid[:-lookback]
    out[lookback:] = np.where(both, np.sign(logc[lookback:] - logc[:-lookback]), 0.0)
    return out


def ewma_volatility(returns: np.ndarray, halflife: float, min_periods: int) -> np.ndarray:
    """(T, S) per-period EWMA volatility of returns up to and including t (NaN returns skipped; NaN before
    ``min_periods`` returns were seen)."""
    frame = pd.DataFrame(np.asarray(returns, np.float64).reshape(len(returns), -1) ** 2)
    variance = frame.ewm(halflife=halflife, min_periods=min_periods, ignore_na=True).mean()
    return np.sqrt(variance.to_numpy())


def ewma_volatility_ref(returns: np.ndarray, halflife: float, min_periods: int) -> np.ndarray:
    """Plain loop of the same estimator: weights (1 - a)^age over the non-NaN returns seen so far, a = 1 - 2^(-1/h)."""
    returns = np.asarray(returns, np.float64).reshape(len(returns), -1)
    decay = 0.5 ** (1.0 / halflife)
    out = np.full(returns.shape, np.nan)
    for s in range(returns.shape[1]):
        weighted, weights, seen = 0.0, 0.0, 0
        for t in range(returns.shape[0]):
            r = returns[t, s]
            if np.isfinite(r):
                weighted, weights, seen = decay * weighted + r * r, decay * weights + 1.0, seen + 1
            if seen >= min_periods:
                out[t, s] = np.sqrt(weighted / weights)
    return out


def vol_target_positions(closes: np.ndarray, valid: np.ndarray | None, config: TradingBaselineConfig) -> np.ndarray:
    """(T, S) long position clip(target / σ̂_t, 0, 1), σ̂ annualised; 0 before the forecast exists."""
    sigma = ewma_volatility(grid_log_returns(closes, valid), config.vol_halflife, config.vol_min_periods)
    annual = sigma * np.sqrt(config.periods_per_year)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = config.target_vol / annual  # inf where σ̂ = 0 (a flat stretch): clipped to fully invested
    return np.where(np.isnan(raw), 0.0, np.clip(raw, 0.0, 1.0))


def forecast_mean_positions(predicted_mean: np.ndarray, mode: str = "sign", scale: float | None = None) -> np.ndarray:
    """Positions from predicted mean returns (any shape): ``sign`` → sign(pred); ``scaled`` → clip(pred / scale, -1, 1).

    Predictions must exist for every row (use ``backtest.hold_positions`` to carry token-level predictions onto the
    hourly grid)."""
    pred = np.asarray(predicted_mean, np.float64)
    if not np.isfinite(pred).all():
        raise ValueError(f"predicted_mean contains {int((~np.isfinite(pred)).sum())} non-finite values")
    if mode == "sign":
        if scale is not None:
            raise ValueError("scale is only used by mode='scaled'")
        return np.sign(pred)
    if mode == "scaled":
        if scale is None or not scale > 0:
            raise ValueError(f"mode='scaled' needs scale > 0, got {scale}")
        return np.clip(pred / scale, -1.0, 1.0)
    raise ValueError(f"unknown mode {mode!r}: expected 'sign' or 'scaled'")


def baseline_positions(closes: np.ndarray, valid: np.ndarray | None = None,
                       config: TradingBaselineConfig | None = None) -> dict[str, np.ndarray]:
    """Every rule-based baseline's positions (T, S), keyed by name (``momentum_24h``, ``momentum_168h``, ...)."""
    config = config or TradingBaselineConfig()
    closes, valid = _grid(closes, valid)
    out = {"flat": flat_positions(closes), "buy_and_hold": buy_and_hold_positions(closes)}
    for lookback in config.momentum_lookbacks:
        out[f"momentum_{lookback}h"] = momentum_positions(closes, valid, lookback)
    out["vol_target"] = vol_target_positions(closes, valid, config)
    return out
