"""``paper_decisions``: per hourly partition, the decisions of every shadowed agent (the @champion and @candidate of
each registered agent name) on the candles that closed in that hour, with their running paper PnL after costs.

The body only wires ``fin_ia_models.live``: engines from the registry, their streaming state kept under
``<storage_root>/live/state`` (so an hour reads only the candles since the last one), ledgers under
``<storage_root>/live/ledger``. Research only: nothing is ever sent to an exchange."""

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
        kinds={"pytorch"},  # not "mlflow": it registers no model (retrain_models selects that kind)
        description="Shadow A/B: what the champion and the candidate agent(s) would hold after each candle that "
        "closed in the hour, their running paper PnL after costs, and the decision latency. Never an order.",
    )
    def paper_decisions(context: dg.AssetExecutionContext, config: PaperDecisionsConfig, mlflow: MlflowResource,
                        candle_store: CandleStoreResource):
        from fin_ia_models.evaluation.plots import markdown_image
        from fin_ia_models.live.engine import DecisionEngine
        from fin_ia_models.live.paper import equity_png, shadow_hour
        from fin_ia_models.live.registry import shadow_specs

        specs = shadow_specs(mlflow.tracking_uri, config.agents)
        if not specs:
            context.log.warning(f"paper_decisions skipped: no @champion or @candidate version of {config.agents} is "
                                f"registered in {mlflow.tracking_uri}; materialize an agent first")
            return
        window = context.partition_time_window
        start_ms, end_ms = int(window.start.timestamp() * 1000), int(window.end.timestamp() * 1000)
        root = UPath(settings.storage_root) / "live"
        lines, metadata = {}, {"models": ", ".join(f"{role} {spec}" for role, spec in specs)}
        for role, spec in specs:
            engine = DecisionEngine.from_registry(spec, mlflow.tracking_uri, seed=settings.seed,
                                                  timeframe=settings.timeframe)
            slug = spec.replace("/", "__v")
            line, facts = shadow_hour(engine, lambda sym, lo, hi: stored_candles(candle_store, sym, lo, hi),
                                      settings.symbols, start_ms, end_ms, root / "state" / f"{slug}.npz",
                                      root / "ledger" / f"{slug}.parquet", context.partition_key, context.log)
            if line is not None:
                lines[f"{role} {spec}"] = line
                prefix = f"{role}_{spec.split('/')[0].removeprefix('fin-ia-agent-')}"
                metadata.update({f"{prefix}_{k}": v for k, v in facts.items()})
        if not lines:
            context.log.warning(f"paper_decisions skipped: no stored candle closed in {context.partition_key}")
            return
        metadata["summary"] = f"paper positions of {', '.join(lines)} (no order placed)"
        metadata["equity"] = dg.MetadataValue.md(markdown_image(equity_png(lines, "paper equity (after costs)"),
                                                                "equity lines"))
        yield dg.MaterializeResult(metadata=metadata)

    return paper_decisions, hourly
