"""``paper_decisions``: per hourly partition, the decisions of every shadowed agent (the @champion and @candidate of
each registered agent name) on the candles that closed in that hour, with their running paper PnL after costs.

The body only wires ``fin_ia_models.live``: engines from the registry, their streaming state kept under
``<storage_root>/live/state`` (so an hour reads only the candles since the last one), ledgers under
``<storage_root>/live/ledger``. Research only: nothing is ever sent to an exchange."""

from __future__ import annotations

import dagster as dg
import pandas as pd
from upath import UPath

from fin_ia_pipeline.market_data.resources import CandleStoreResource
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tracking.resource import MlflowResource

LIVE = "live"
AGENT_MODELS = ("fin-ia-agent-cvar", "fin-ia-agent-ppo")  # registered names of the agents stage


class PaperDecisionsConfig(dg.Config):
    """Which registered agents to shadow (each one's @champion and, if different, its @candidate)."""

    agents: list[str] = list(AGENT_MODELS)


def stored_candles(store: CandleStoreResource, symbol: str, from_ms: int, end_ms: int) -> pd.DataFrame | None:
    """The symbol's stored candles opening in [day of ``from_ms``, ``end_ms``), one validated series, or None."""
    from fin_ia_models.data.series import series_by_symbol

    folder = store.path(symbol, "2000-01-01").parent
    first = pd.Timestamp(max(from_ms, 0), unit="ms").strftime("%Y-%m-%d")
    last = pd.Timestamp(end_ms - 1, unit="ms").strftime("%Y-%m-%d")
    days = sorted(p.stem for p in folder.glob("*.parquet")) if folder.exists() else []
    frames = {day: store.read(symbol, day) for day in days if first <= day <= last}
    series = series_by_symbol({d: f for d, f in frames.items() if f is not None}, None, end_ms)
    return series.get(symbol)


def build_paper_decisions(settings: PipelineSettings) -> tuple[dg.AssetsDefinition, dg.PartitionsDefinition]:
    hourly = dg.HourlyPartitionsDefinition(start_date=f"{settings.start_date}-00:00", timezone="UTC")

    @dg.asset(
        group_name=LIVE,
        partitions_def=hourly,
        output_required=False,
        code_version="1",
        kinds={"pytorch", "mlflow"},
        description="Shadow A/B: what the champion and the candidate agent(s) would hold after each candle that "
        "closed in the hour, their running paper PnL after costs, and the decision latency. Never an order.",
    )
    def paper_decisions(context: dg.AssetExecutionContext, config: PaperDecisionsConfig, mlflow: MlflowResource,
                        candle_store: CandleStoreResource):
        from fin_ia_models.data.schema import timeframe_ms
        from fin_ia_models.evaluation.plots import markdown_image
        from fin_ia_models.live.engine import DecisionEngine
        from fin_ia_models.live.paper import (advance, equity_line, equity_png, latency_percentiles, ledger_rows,
                                              paper_pnl, update_ledger)
        from fin_ia_models.live.registry import shadow_specs

        specs = shadow_specs(mlflow.tracking_uri, config.agents)
        if not specs:
            context.log.warning(f"paper_decisions skipped: no @champion or @candidate version of {config.agents} is "
                                f"registered in {mlflow.tracking_uri}; materialize an agent first")
            return
        window = context.partition_time_window
        start_ms, end_ms = int(window.start.timestamp() * 1000), int(window.end.timestamp() * 1000)
        root = UPath(settings.storage_root) / "live"
        step_ms = timeframe_ms(settings.timeframe)
        lines, metadata = {}, {"models": ", ".join(f"{role} {spec}" for role, spec in specs)}
        for role, spec in specs:
            engine = DecisionEngine.from_registry(spec, mlflow.tracking_uri, seed=settings.seed,
                                                  timeframe=settings.timeframe)
            slug = spec.replace("/", "__v")
            state_path = root / "state" / f"{slug}.npz"
            if state_path.exists():
                try:
                    engine.load_state(state_path)
                except ValueError as err:  # another version's or format's state: rebuilt from the candles
                    context.log.warning(f"{spec}: stored state not used ({err}); warm start from stored candles")
            rows = []
            for symbol in settings.symbols:
                stream = engine.streams.get(symbol)
                from_ms = stream.last_ts if stream is not None and stream.last_ts < start_ms else 0
                candles = stored_candles(candle_store, symbol, from_ms, end_ms)
                if candles is None or not (candles["timestamp"] >= start_ms).any():
                    context.log.warning(f"{spec}: no stored {symbol} candle closed in {context.partition_key}")
                    continue
                decisions = advance(engine, symbol, candles, start_ms, end_ms)
                rows.append(ledger_rows(decisions, candles, context.partition_key))
            state_path.parent.mkdir(parents=True, exist_ok=True)
            engine.save_state(state_path)
            if not rows:
                continue
            ledger = update_ledger(root / "ledger" / f"{slug}.parquet", pd.concat(rows, ignore_index=True),
                                   context.partition_key)
            line = equity_line(paper_pnl(ledger, engine.stack.cost_rate, step_ms))
            lines[f"{role} {spec}"] = line
            prefix = f"{role}_{spec.split('/')[0].removeprefix('fin-ia-agent-')}"
            metadata[f"{prefix}_version"] = spec
            metadata[f"{prefix}_paper_net_log_return"] = float(line.iloc[-1])
            metadata[f"{prefix}_positions"] = ", ".join(f"{r.symbol}: {r.position:+.3f}" for r in
                                                        ledger[ledger["partition"] == context.partition_key]
                                                        .groupby("symbol").tail(1).itertuples())
            metadata.update({f"{prefix}_{k}": v for k, v in latency_percentiles(ledger).items()})
        if not lines:
            context.log.warning(f"paper_decisions skipped: no stored candle closed in {context.partition_key}")
            return
        metadata["equity"] = dg.MetadataValue.md(markdown_image(equity_png(lines, "paper equity (after costs)"),
                                                                "equity lines"))
        yield dg.MaterializeResult(metadata=metadata)

    return paper_decisions, hourly
