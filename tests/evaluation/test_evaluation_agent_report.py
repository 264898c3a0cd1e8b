"""The agents' backtest report on synthetic data: every strategy through one engine, agent decisions held on the
hourly grid from the token's end on, DSR with the given trials, undefined values named, and no look-ahead (changing
candles after t leaves every strategy's earlier net returns unchanged)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fin_ia_models.agents.features import ObsNormalizer
from fin_ia_models.agents.synthetic import synthetic_agent_data
from fin_ia_models.evaluation.agent_report import markdown_table, window_report
from fin_ia_models.evaluation.backtest import CostConfig

HOUR = 3_600_000


class SignAgent:
    """Long when embedding channel 0 (the planted signal) is positive, short otherwise."""

    def __init__(self, data) -> None:
        self.normalizer = ObsNormalizer.fit([data], 10.0)

    def act(self, row, position: float) -> float:
        return 0.5 if row.embedding[0] > 0 else -0.5


def _market(T: int = 120, seed: int = 0):
    data = synthetic_agent_data(T=T, D=3, N=8, seed=seed, symbol="SYN/USDT")
    start = int(data.end_timestamp[0]) - 200 * HOUR  # candle history before the first token (for the baselines)
    stamps = np.arange(start, int(data.end_timestamp[-1]) + 17 * HOUR, HOUR)
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(stamps))))
    candles = pd.DataFrame({"timestamp": stamps, "open": close, "high": close, "low": close, "close": close,
                            "volume": 1.0})
    return data, candles


def test_every_strategy_is_scored_and_agents_hold_their_decisions():
    data, candles = _market()
    agent = SignAgent(data)
    start, end = int(data.end_timestamp[0]), int(data.end_timestamp[-1]) + 16 * HOUR
    report = window_report("test", {"sign": agent}, {"SYN/USDT": data}, {"SYN/USDT": candles}, start, end,
                           CostConfig(), np.array([0.5, -0.3, 1.2]), n_boot=100)
    assert set(report.scores) == {"sign", "flat", "buy_and_hold", "momentum_24h", "momentum_168h", "vol_target",
                                  "multiverse_mean"}
    held = report.backtests["sign"].positions[:, 0]
    decisions = np.where(data.embedding[:, 0] > 0, 0.5, -0.5)
    at = np.searchsorted(report.timestamps, data.end_timestamp)
    np.testing.assert_array_equal(held[at[:-1]], decisions[:-1])  # each decision applies from its token's end on
    np.testing.assert_array_equal(held[at[3]:at[4]], decisions[3])  # and is held until the next decision
    sign = report.scores["sign"]
    assert sign.n_trials == 3 and 0.0 <= sign.dsr <= 1.0 and sign.sharpe_ci[0] <= sign.metrics.sharpe
    flat = report.scores["flat"]
    assert math.isnan(flat.metrics.sharpe) and math.isnan(flat.psr) and "constant" in flat.undefined["psr"]
    table = markdown_table(report)
    assert table.splitlines()[2].startswith("| sign |") and "| flat | – [–, –] |" in table


def test_changing_the_future_leaves_earlier_returns_unchanged():
    data, candles = _market(seed=1)
    agent = SignAgent(data)
    start, end = int(data.end_timestamp[0]), int(data.end_timestamp[-1]) + 16 * HOUR
    args = ({"sign": agent}, {"SYN/USDT": data})
    base = window_report("test", *args, {"SYN/USDT": candles}, start, end, CostConfig(), None, n_boot=100)
    cut = int(data.end_timestamp[60])
    shocked = candles.copy()
    shocked.loc[shocked["timestamp"] > cut, "close"] *= np.linspace(0.5, 2.0, int((shocked["timestamp"] > cut).sum()))
    after = window_report("test", *args, {"SYN/USDT": shocked}, start, end, CostConfig(), None, n_boot=100)
    t = int(np.searchsorted(base.timestamps, cut))  # candle t's net return uses close_{t+1}: compare before it
    for name in base.backtests:
        np.testing.assert_array_equal(after.backtests[name].net[:t], base.backtests[name].net[:t], err_msg=name)
    assert not np.array_equal(after.backtests["buy_and_hold"].net[t:], base.backtests["buy_and_hold"].net[t:])
