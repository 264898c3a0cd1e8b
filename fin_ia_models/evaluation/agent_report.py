"""The backtest report of trading agents against the baselines, on one time window, through one engine.

Every strategy is run by ``backtest.run_backtest`` on the same hourly candle grid of the window (all symbols, equal
capital per symbol, the same costs):

- agents: ``decide.agent_positions`` over the window's token rows (each decision from rows ≤ t only), held on the
  candles from the token's end on (``backtest.hold_positions``);
- rule baselines (``trading_baselines.baseline_positions``): flat, buy & hold, time-series momentum 24 h / 7 d, EWMA
  volatility targeting — computed on the whole candle history (causal), then cut to the window;
- ``multiverse_mean``: the sign of the multiverse's mean sampled next-token return, without an agent.

Per strategy (the equal-weight portfolio's hourly net returns): ``performance_metrics``, PSR against 0, stationary
bootstrap CIs of the Sharpe ratio and the annual return, trades, and for agents the deflated Sharpe ratio with N and
the variance of the trials' Sharpe ratios read from MLflow by the caller (``tracking.trials``). Where a number is
undefined (a flat strategy has no Sharpe, no PSR, no interval) it is NaN and the reason is kept in ``undefined``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fin_ia_models.evaluation.backtest import BacktestResult, CostConfig, candle_grid, hold_positions, run_backtest
from fin_ia_models.evaluation.performance import PERIODS_PER_YEAR, PerformanceMetrics, performance_metrics
from fin_ia_models.evaluation.trading_baselines import TradingBaselineConfig, baseline_positions

MULTIVERSE_MEAN = "multiverse_mean"
BUY_AND_HOLD = "buy_and_hold"
FLAT = "flat"


@dataclass
class StrategyScore:
    """One strategy on one window (portfolio of all symbols)."""

    name: str
    is_agent: bool
    metrics: PerformanceMetrics
    psr: float  # P(true Sharpe > 0)
    sharpe_ci: tuple[float, float]  # 95 % stationary bootstrap interval of the annualised Sharpe
    annual_return_ci: tuple[float, float]
    n_trades: int  # position changes, summed over symbols
    dsr: float = math.nan  # agents only: PSR against the expected max Sharpe of the N trials
    n_trials: int = 0
    undefined: dict[str, str] = field(default_factory=dict)  # metric → why it is NaN

    def row(self) -> dict[str, float]:
        m = self.metrics
        return {"sharpe": m.sharpe, "sharpe_lo": self.sharpe_ci[0], "sharpe_hi": self.sharpe_ci[1],
                "annual_return": m.annual_return, "annual_return_lo": self.annual_return_ci[0],
                "annual_return_hi": self.annual_return_ci[1], "total_return": m.total_return,
                "max_drawdown": m.max_drawdown, "sortino": m.sortino, "calmar": m.calmar, "turnover": m.turnover,
                "exposure": m.exposure, "hit_rate": m.hit_rate, "psr": self.psr, "dsr": self.dsr,
                "n_trials": float(self.n_trials), "trades": float(self.n_trades)}


@dataclass
class WindowReport:
    window: str  # "val" or "test"
    timestamps: np.ndarray  # (T,) hourly grid of the window
    backtests: dict[str, BacktestResult]
    scores: dict[str, StrategyScore]

    def net(self, name: str) -> np.ndarray:
        return self.backtests[name].portfolio_net()

    def best_baseline(self, exclude: tuple[str, ...] = (BUY_AND_HOLD,)) -> tuple[str, float]:
        """The baseline (not in ``exclude``) with the highest net Sharpe; flat counts as 0 (it earns exactly 0)."""
        values = {n: (0.0 if n == FLAT else s.metrics.sharpe) for n, s in self.scores.items()
                  if not s.is_agent and n not in exclude}
        values = {n: v for n, v in values.items() if not math.isnan(v)}
        name = max(values, key=values.get)
        return name, values[name]


def _window_grid(candles: Mapping[str, pd.DataFrame], start_ms: int, end_ms: int):
    ts, closes, valid, symbols = candle_grid(candles)
    keep = (ts >= start_ms) & (ts < end_ms)
    if keep.sum() < 3:
        raise ValueError(f"only {int(keep.sum())} candles in the window [{start_ms}, {end_ms}) ms")
    return ts, closes, valid, symbols, keep


def strategy_positions(agents: Mapping[str, object], windows: Mapping[str, object],
                       candles: Mapping[str, pd.DataFrame], start_ms: int, end_ms: int,
                       baselines: TradingBaselineConfig | None = None):
    """(timestamps (T,), closes (T, S), valid (T, S), symbols, {strategy: positions (T, S)}) on the window's grid.

    ``windows``: symbol → the window's ``AgentData`` (agents and the multiverse signal decide on its rows)."""
    from fin_ia_models.agents.decide import agent_positions

    candles = {s: candles[s] for s in sorted(windows)}
    ts, closes, valid, symbols, keep = _window_grid(candles, start_ms, end_ms)
    positions = {name: p[keep] for name, p in baseline_positions(closes, valid, baselines).items()}
    grid = ts[keep]
    mv = np.zeros((len(grid), len(symbols)))
    for j, symbol in enumerate(symbols):
        data = windows[symbol]
        if data.mv_futures is None:
            raise ValueError(f"{symbol}: the window has no mv_futures for the multiverse mean signal")
        mv[:, j] = hold_positions(data.end_timestamp, np.sign(data.mv_futures[:, :, 0].mean(axis=1)), grid)
    positions[MULTIVERSE_MEAN] = mv
    for name, agent in agents.items():
        held = np.zeros((len(grid), len(symbols)))
        for j, symbol in enumerate(symbols):
            data = windows[symbol]
            held[:, j] = hold_positions(data.end_timestamp, agent_positions(agent, data), grid)
        positions[name] = held
    return grid, closes[keep], valid[keep], symbols, positions


def score_strategy(name: str, result: BacktestResult, is_agent: bool, trial_sharpes: np.ndarray | None,
                   n_boot: int, seed: int) -> StrategyScore:
    """Metrics, PSR, bootstrap CIs (and for agents the DSR) of a backtest's equal-weight portfolio."""
    from fin_ia_models.evaluation.sharpe_inference import deflated_sharpe_from_returns, psr_from_returns
    from fin_ia_models.evaluation.uncertainty import annual_return_ci, sharpe_ci

    net = result.portfolio_net()
    metrics = performance_metrics(net, result.positions.mean(axis=1), PERIODS_PER_YEAR)
    undefined = dict(metrics.undefined)
    nan2 = (math.nan, math.nan)

    def attempt(key: str, fn, default):
        try:
            return fn()
        except ValueError as err:
            undefined[key] = str(err)
            return default

    psr = attempt("psr", lambda: psr_from_returns(net), math.nan)
    s_ci = attempt("sharpe_ci", lambda: (lambda c: (c.low, c.high))(sharpe_ci(net, n_boot=n_boot, seed=seed)), nan2)
    r_ci = attempt("annual_return_ci", lambda: (lambda c: (c.low, c.high))(annual_return_ci(net, n_boot=n_boot,
                                                                                          seed=seed)), nan2)
    score = StrategyScore(name, is_agent, metrics, psr, s_ci, r_ci, int(result.n_trades().sum()), undefined=undefined)
    if is_agent:
        trials = np.asarray([] if trial_sharpes is None else trial_sharpes, np.float64)
        score.n_trials = len(trials)
        score.dsr = attempt("dsr", lambda: deflated_sharpe_from_returns(net, trials, PERIODS_PER_YEAR).dsr, math.nan)
    return score


def window_report(window: str, agents: Mapping[str, object], windows: Mapping[str, object],
                  candles: Mapping[str, pd.DataFrame], start_ms: int, end_ms: int, costs: CostConfig,
                  trial_sharpes: np.ndarray | None, n_boot: int = 1000, seed: int = 0,
                  baselines: TradingBaselineConfig | None = None) -> WindowReport:
    """Every agent and baseline backtested and scored on ``[start_ms, end_ms)``."""
    grid, closes, valid, symbols, positions = strategy_positions(agents, windows, candles, start_ms, end_ms,
                                                                 baselines)
    backtests = {name: run_backtest(grid, closes, p, valid, costs, symbols) for name, p in positions.items()}
    scores = {name: score_strategy(name, bt, name in agents, trial_sharpes, n_boot, seed)
              for name, bt in backtests.items()}
    return WindowReport(window, grid, backtests, scores)


def _fmt(value: float, spec: str = ".2f") -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def markdown_table(report: WindowReport) -> str:
    """The metrics table (one row per strategy, agents first) in markdown."""
    head = ("| strategy | net Sharpe [95 % CI] | annual return [95 % CI] | max DD | turnover/yr | trades | exposure "
            "| PSR | DSR (N trials) |")
    lines = [head, "|" + "---|" * 9]
    order = sorted(report.scores.values(), key=lambda s: (not s.is_agent, s.name))
    for s in order:
        m = s.metrics
        dsr = f"{_fmt(s.dsr)} ({s.n_trials})" if s.is_agent else "–"
        lines.append(
            f"| {s.name} | {_fmt(m.sharpe)} [{_fmt(s.sharpe_ci[0])}, {_fmt(s.sharpe_ci[1])}] | "
            f"{_fmt(m.annual_return, '+.1%')} [{_fmt(s.annual_return_ci[0], '+.1%')}, "
            f"{_fmt(s.annual_return_ci[1], '+.1%')}] | {_fmt(m.max_drawdown, '.1%')} | {_fmt(m.turnover, '.0f')} | "
            f"{s.n_trades} | {_fmt(m.exposure)} | {_fmt(s.psr)} | {dsr} |")
    return "\n".join(lines)


def agent_run_metrics(report: WindowReport, agent: str) -> dict[str, float]:
    """What the report logs to an agent's MLflow run, prefixed ``{window}_bt_``: the agent's row, every baseline's
    Sharpe, buy & hold's and the best other baseline's Sharpe (the gate's inputs on the validation window)."""
    prefix = f"{report.window}_bt_"
    out = {f"{prefix}{k}": v for k, v in report.scores[agent].row().items()}
    for name, score in report.scores.items():
        if not score.is_agent:
            out[f"{prefix}baseline_{name}_sharpe"] = 0.0 if name == FLAT else score.metrics.sharpe
    out[f"{prefix}buy_and_hold_sharpe"] = report.scores[BUY_AND_HOLD].metrics.sharpe
    out[f"{prefix}best_other_baseline_sharpe"] = report.best_baseline()[1]
    return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}


@dataclass
class AgentsReport:
    """Validation and test reports of one set of agents: what the orchestrator shows and logs."""

    windows: dict[str, WindowReport]  # "val", "test"
    tables: dict[str, str]  # window → markdown table
    plots: dict[str, bytes]  # window → equity and drawdown PNG
    rows: list[dict]  # one per (window, strategy): ``StrategyScore.row`` plus the reasons of undefined values
    agent_metrics: dict[str, dict[str, float]]  # agent → ``{window}_bt_*`` metrics of both windows

    def trades(self, window: str) -> dict[str, int]:
        return {name: s.n_trades for name, s in self.windows[window].scores.items()}

    def summary(self, n_trials: int) -> str:
        """One line: the test window's best agent (by its test Sharpe — reported, not chosen) against buy & hold."""
        test = self.windows["test"].scores
        agents = [n for n, s in test.items() if s.is_agent]
        best = max(agents, key=lambda n: -math.inf if math.isnan(test[n].metrics.sharpe) else test[n].metrics.sharpe)
        return (f"test: {best} net Sharpe {_fmt(test[best].metrics.sharpe)} (DSR {_fmt(test[best].dsr)}, N = "
                f"{n_trials}) vs buy & hold {_fmt(test[BUY_AND_HOLD].metrics.sharpe)}; tables in metadata")


def agents_report(agents: Mapping[str, object], windows: Mapping[str, Mapping[str, object]],
                  candles: Mapping[str, pd.DataFrame], split, costs: CostConfig, trial_sharpes: np.ndarray | None,
                  n_boot: int = 1000, seed: int = 0, names: tuple[str, ...] = ("val", "test")) -> AgentsReport:
    """``window_report`` of ``agents`` on the validation and test windows of ``split`` (``windows``: symbol →
    {window → AgentData}), with the markdown tables, plots and per-agent metrics."""
    import json

    from fin_ia_models.evaluation.report_plots import equity_drawdown_png

    reports, tables, plots, rows = {}, {}, {}, []
    metrics: dict[str, dict[str, float]] = {name: {} for name in agents}
    for window in names:
        start, end = split.range_ms(window)
        report = window_report(window, agents, {s: w[window] for s, w in windows.items()}, candles, start, end, costs,
                               trial_sharpes, n_boot=n_boot, seed=seed)
        reports[window], tables[window] = report, markdown_table(report)
        plots[window] = equity_drawdown_png(report.timestamps, {n: report.net(n) for n in report.backtests},
                                            f"{window} window: equity and drawdown (all symbols, after costs)")
        rows += [{"window": window, "strategy": name, "is_agent": score.is_agent, **score.row(),
                  "undefined": json.dumps(score.undefined)} for name, score in report.scores.items()]
        for name in agents:
            metrics[name].update(agent_run_metrics(report, name))
    return AgentsReport(reports, tables, plots, rows, metrics)
