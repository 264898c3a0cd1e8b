"""Paper (shadow) decisions: advance an engine over newly closed candles, keep a ledger, and book its PnL after
costs. Nothing here ever places an order; a "position" is what the agent would hold.

PnL of one symbol per candle t (log-return units, the backtest's arithmetic): the position decided at the close of
candle t−1 earns candle t's log return, and changing it costs ``cost_rate`` per unit of |Δposition|::

    net_t = pos_{t−1} · log(close_t / close_{t−1}) − cost_rate · |pos_t − pos_{t−1}|

across a candle gap the return is not booked (the engine flattened at the gap). The portfolio line is the mean over
symbols of their per-candle net returns, cumulated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fin_ia_models.evaluation.plots import _figure, _png
from fin_ia_models.live.engine import Decision, DecisionEngine
from fin_ia_models.utils.atomic import atomic_write_bytes

LEDGER_COLUMNS = ("symbol", "timestamp", "close", "event", "position", "token_end", "mv_mean", "mv_std", "mv_q05",
                  "confidence", "elapsed_ms", "partition")


def advance(engine: DecisionEngine, symbol: str, candles: pd.DataFrame, start_ms: int,
            end_ms: int) -> list[Decision]:
    """Decisions on ``candles`` opening in [start_ms, end_ms). Before them the symbol's state is brought to
    ``start_ms``: from its loaded state plus the stored candles since (missed hours are applied, not booked), or a
    warm start on the stored candles when there is no state or it is already past ``start_ms`` (a re-run)."""
    stream = engine.streams.get(symbol)
    before = candles[candles["timestamp"] < start_ms]
    if stream is None or stream.last_ts >= start_ms:
        engine.streams.pop(symbol, None)
        engine.warm_start(symbol, before)
    else:
        engine.run(symbol, before[before["timestamp"] > stream.last_ts])
    window = candles[(candles["timestamp"] >= start_ms) & (candles["timestamp"] < end_ms)]
    return engine.run(symbol, window)


def ledger_rows(decisions: list[Decision], candles: pd.DataFrame, partition: str) -> pd.DataFrame:
    closes = candles.set_index("timestamp")["close"]
    rows = [{**{k: getattr(d, k) for k in LEDGER_COLUMNS if hasattr(d, k)}, "close": float(closes[d.timestamp]),
             "partition": partition} for d in decisions]
    return pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))


def update_ledger(path: Path, rows: pd.DataFrame, partition: str) -> pd.DataFrame:
    """Replace ``partition``'s rows of the parquet ledger at ``path`` by ``rows`` (idempotent re-runs); atomic."""
    old = pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=list(LEDGER_COLUMNS))
    parts = [f for f in (old[old["partition"] != partition], rows) if len(f)]
    ledger = pd.concat(parts, ignore_index=True) if parts else rows
    ledger = ledger.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, ledger.to_parquet(index=False))
    return ledger


def paper_pnl(ledger: pd.DataFrame, cost_rate: float, step_ms: int) -> pd.DataFrame:
    """Per (symbol, timestamp): ``net`` after costs (module docstring); rows of skipped late candles dropped."""
    frame = ledger[ledger["event"] != "late"].sort_values(["symbol", "timestamp"], kind="stable").copy()
    group = frame.groupby("symbol", sort=False)
    prev_pos = group["position"].shift(1).fillna(0.0)
    contiguous = (group["timestamp"].diff() == step_ms).to_numpy()
    ret = np.log(frame["close"] / group["close"].shift(1)).to_numpy()
    frame["net"] = np.where(contiguous, prev_pos * ret, 0.0) - cost_rate * np.abs(frame["position"] - prev_pos)
    return frame


def equity_line(pnl: pd.DataFrame) -> pd.Series:
    """Cumulated mean-over-symbols net log return, indexed by candle open time (ms)."""
    return pnl.groupby("timestamp")["net"].mean().sort_index().cumsum()


def latency_percentiles(ledger: pd.DataFrame) -> dict[str, float]:
    """p50/p99 (ms) of the engine call, for candles that completed a decision and for the others."""
    out = {}
    for name, mask in (("patch", ledger["event"] == "decide"), ("non_patch", ledger["event"] != "decide")):
        values = ledger.loc[mask, "elapsed_ms"].to_numpy(np.float64)
        if len(values):
            out[f"latency_{name}_p50_ms"] = float(np.percentile(values, 50))
            out[f"latency_{name}_p99_ms"] = float(np.percentile(values, 99))
    return out


def equity_png(lines: dict[str, pd.Series], title: str) -> bytes:
    """One equity line per label (x: UTC time)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for label, line in lines.items():
        ax.plot(pd.to_datetime(line.index, unit="ms"), line.to_numpy(), label=label)
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_title(title)
    ax.set_ylabel("cumulative net log return")
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    return _png(fig)


def shadow_hour(engine: DecisionEngine, read_candles, symbols, start_ms: int, end_ms: int, state_path: Path,
                ledger_path: Path, partition: str, log) -> tuple[pd.Series | None, dict]:
    """One model's shadow decisions for the hour [start_ms, end_ms): load its state (another version's state is
    logged and replaced by a warm start), advance every symbol, save the state, update the ledger. ``read_candles(
    symbol, from_ms, end_ms)`` gives the stored series (or None). Returns (equity line, facts) — (None, {}) when no
    symbol has a candle in the hour."""
    spec = engine.versions.get("agent", "agent")
    if state_path.exists():
        try:
            engine.load_state(state_path)
        except ValueError as err:
            log.warning(f"{spec}: stored state not used ({err}); warm start from stored candles")
    rows = []
    for symbol in symbols:
        stream = engine.streams.get(symbol)
        from_ms = stream.last_ts if stream is not None and stream.last_ts < start_ms else 0
        candles = read_candles(symbol, from_ms, end_ms)
        if candles is None or not (candles["timestamp"] >= start_ms).any():
            log.warning(f"{spec}: no stored {symbol} candle opened in {partition}")
            continue
        rows.append(ledger_rows(advance(engine, symbol, candles, start_ms, end_ms), candles, partition))
    state_path.parent.mkdir(parents=True, exist_ok=True)
    engine.save_state(state_path)
    if not rows:
        return None, {}
    ledger = update_ledger(ledger_path, pd.concat(rows, ignore_index=True), partition)
    line = equity_line(paper_pnl(ledger, engine.stack.cost_rate, engine.step_ms))
    now = ledger[ledger["partition"] == partition].groupby("symbol").tail(1)
    facts = {"version": spec, "paper_net_log_return": float(line.iloc[-1]),
             "positions": ", ".join(f"{r.symbol}: {r.position:+.3f}" for r in now.itertuples()),
             **latency_percentiles(ledger)}
    return line, facts
