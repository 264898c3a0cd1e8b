"""Performance metrics of a strategy's per-candle net simple returns (hourly, annualised with 24 × 365 periods).

The return-based metrics come from ``empyrical-reloaded`` (import name ``empyrical``; checked with numpy 2 and pandas 3:
the functions used here run without warnings and match hand-computed values in the tests):

- total return Π(1 + r) - 1 (``cum_returns_final``), annual return as CAGR (``annual_return``),
- annual volatility std(r, ddof=1)·√P (``annual_volatility``), Sharpe mean/std(ddof=1)·√P (``sharpe_ratio``),
- Sortino mean·P / (sqrt(mean(min(r, 0)²))·√P) (``sortino_ratio``, Sortino & Price 1994),
- max drawdown from the running peak of the equity curve started at 1 (``max_drawdown``), Calmar = CAGR / |max DD|.

Position-based metrics are computed here: turnover (annualised Σ|Δp|: how many times a year the book is traded in
full), hit rate (share of candles with a position whose net return is > 0), exposure (mean |p|), number of trades
(candles with Δp ≠ 0).

Undefined metrics are NaN with the reason in ``PerformanceMetrics.undefined`` — never 0: Sharpe and Sortino of a
constant series (e.g. the flat strategy), Sortino without a losing candle, Calmar without a drawdown, hit rate without
exposure. empyrical itself returns ±inf for a constant series' Sharpe and for a Sortino without losses, and NaN for a
Calmar without drawdown; those cases are caught before calling it. An empty series or NaN returns are errors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

PERIODS_PER_YEAR = 24 * 365  # hourly candles, crypto trades every hour of the year


@dataclass(frozen=True)
class PerformanceMetrics:
    total_return: float  # compounded over the whole series
    annual_return: float  # CAGR
    annual_volatility: float
    sharpe: float  # annualised, risk-free rate 0
    sortino: float  # annualised, target return 0
    max_drawdown: float  # <= 0, fraction of the running peak
    calmar: float  # CAGR / |max drawdown|
    turnover: float  # annualised Σ|Δposition|
    hit_rate: float  # share of exposed candles with net return > 0
    exposure: float  # mean |position|
    n_trades: int | None  # candles with a position change (None without positions)
    n_periods: int  # number of returns
    undefined: dict[str, str] = field(default_factory=dict)  # metric → why it is NaN

    def to_dict(self) -> dict:
        return asdict(self)


def _check_returns(returns: np.ndarray) -> np.ndarray:
    returns = np.asarray(returns, np.float64)
    if returns.ndim != 1:
        raise ValueError(f"returns must be 1-D, got shape {returns.shape}")
    if len(returns) == 0:
        raise ValueError("returns are empty: no metric is defined")
    if not np.isfinite(returns).all():
        raise ValueError(f"returns contain {int((~np.isfinite(returns)).sum())} non-finite values")
    if (returns <= -1).any():
        raise ValueError(f"a simple return <= -1 wipes the book out, got {returns.min()}")
    return returns


def performance_metrics(returns: np.ndarray, positions: np.ndarray | None = None,
                        periods_per_year: int = PERIODS_PER_YEAR) -> PerformanceMetrics:
    """Metrics of net simple returns (T,) and, if given, the effective positions (T,) that earned them."""
    import empyrical

    returns = _check_returns(returns)
    if periods_per_year < 1:
        raise ValueError(f"periods_per_year must be >= 1, got {periods_per_year}")
    ann = periods_per_year
    undefined: dict[str, str] = {}
    nan = float("nan")

    constant = len(returns) < 2 or returns.max() == returns.min()
    volatility = float(empyrical.annual_volatility(returns, annualization=ann)) if len(returns) > 1 else nan
    if len(returns) < 2:
        undefined["annual_volatility"] = "fewer than 2 returns"
    if constant:
        reason = "constant returns: zero standard deviation" if len(returns) > 1 else "fewer than 2 returns"
        sharpe = sortino = nan
        undefined["sharpe"] = undefined["sortino"] = reason
    else:
        sharpe = float(empyrical.sharpe_ratio(returns, annualization=ann))
        if (returns < 0).any():
            sortino = float(empyrical.sortino_ratio(returns, annualization=ann))
        else:
            sortino = nan
            undefined["sortino"] = "no negative return: downside deviation is 0"
    max_dd = float(empyrical.max_drawdown(returns))
    annual = float(empyrical.annual_return(returns, annualization=ann))
    if max_dd < 0:
        calmar = annual / abs(max_dd)
    else:
        calmar = nan
        undefined["calmar"] = "no drawdown"

    if positions is None:
        turnover = hit_rate = exposure = nan
        n_trades = None
        for name in ("turnover", "hit_rate", "exposure", "n_trades"):
            undefined[name] = "positions not given"
    else:
        positions = np.asarray(positions, np.float64)
        if positions.shape != returns.shape:
            raise ValueError(f"misaligned positions {positions.shape} and returns {returns.shape}")
        if not np.isfinite(positions).all():
            raise ValueError("positions contain non-finite values")
        traded = np.abs(np.diff(positions, prepend=0.0))  # (T,)
        turnover = float(traded.sum() * ann / len(returns))
        n_trades = int((traded > 0).sum())
        exposure = float(np.abs(positions).mean())
        exposed = positions != 0
        if exposed.any():
            hit_rate = float((returns[exposed] > 0).mean())
        else:
            hit_rate = nan
            undefined["hit_rate"] = "never exposed"
    return PerformanceMetrics(
        total_return=float(empyrical.cum_returns_final(returns)), annual_return=annual, annual_volatility=volatility,
        sharpe=sharpe, sortino=sortino, max_drawdown=max_dd, calmar=calmar, turnover=turnover, hit_rate=hit_rate,
        exposure=exposure, n_trades=n_trades, n_periods=len(returns), undefined=undefined,
    )


def drawdown_curve(returns: np.ndarray) -> np.ndarray:
    """(T,) drawdown of the equity curve (start 1) from its running peak, <= 0."""
    equity = np.cumprod(1.0 + _check_returns(returns))
    peak = np.maximum.accumulate(np.r_[1.0, equity])[1:]
    return equity / peak - 1.0


def backtest_metrics(result, periods_per_year: int = PERIODS_PER_YEAR) -> dict[str, PerformanceMetrics]:
    """Metrics of each symbol's book in a ``backtest.BacktestResult`` (net returns and the effective positions)."""
    return {symbol: performance_metrics(result.net[:, j], result.positions[:, j], periods_per_year)
            for j, symbol in enumerate(result.symbols)}
