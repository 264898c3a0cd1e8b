"""Weekly retrain, drift-triggered retrain, and declarative automation of the derived assets.

Nothing here names a stage's assets: the selections are by kind and group, so a new stage joins them by itself.

- ``retrain_models`` job: every training asset (kind ``mlflow``: it registers a model) and everything downstream of
  them, with the champion gates. The weekly schedule launches it Sunday 03:00 UTC.
- ``token_drift`` sensor: every hour, PSI of each symbol's last week of tokens against its training window (10
  equal-mass frequency bins, see ``fin_ia_models.evaluation.drift``); when the PSI exceeds both ``FIN_IA_DRIFT_PSI``
  (default 0.25, the "large shift" rule of thumb) and the 95th percentile of PSI that samples of the same size
  from the training window itself produce, it requests a retrain run. The PSI is recorded as an observation of ``token_sequences`` (per symbol) so it shows in the UI.
- ``derived_assets`` automation sensor: evaluates the automation conditions of everything downstream of market data
  (token sequences, embeddings, ...) so they follow new candles and new models without a schedule.
"""

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
from upath import UPath

from fin_ia_models.data.schema import symbol_slug
from fin_ia_models.evaluation.drift import token_drift
from fin_ia_pipeline.market_data.assets import MARKET_DATA
from fin_ia_pipeline.settings import PipelineSettings

MODEL_KIND = "mlflow"  # kind of every training asset (it registers a model version in MLflow)
TRAINING_ASSETS = dg.AssetSelection.kind(MODEL_KIND)
DERIVED_ASSETS = dg.AssetSelection.groups(MARKET_DATA).downstream(include_self=False)


def _codebook_size(instance: dg.DagsterInstance, symbol: str) -> int | None:
    """The codebook size the latest token_sequences of ``symbol`` were made with (recorded in their metadata)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("token_sequences"), asset_partitions=[symbol]), limit=1).records
    meta = records[0].event_log_entry.asset_materialization.metadata if records else {}
    return int(meta["codebook_size"].value) if "codebook_size" in meta else None


def build_defs(settings: PipelineSettings) -> dg.Definitions:
    retrain = dg.define_asset_job(
        "retrain_models",
        selection=TRAINING_ASSETS.downstream(),
        description="Retrain every learned stage on the latest stored candles and refresh what they feed.",
    )
    weekly = dg.ScheduleDefinition(
        name="weekly_retrain", cron_schedule="0 3 * * 0", execution_timezone="UTC", job=retrain,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Sunday 03:00 UTC: retrain the tokenizer and the world model.",
    )
    threshold = settings.drift_psi
    tokens_root = UPath(settings.storage_root) / "frames" / "token_sequences"

    @dg.sensor(name="token_drift", job=retrain, minimum_interval_seconds=3600,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description=f"Retrain when the last week's token distribution drifts (PSI > {threshold}) from the "
               "training window's.")
    def token_drift_sensor(context: dg.SensorEvaluationContext):
        split = settings.time_split()
        reference = (split.range_ms("train")[0], split.range_ms("val")[1])
        observations, drifted, lines = [], [], []
        for symbol in settings.symbols:
            path = tokens_root / f"{symbol_slug(symbol)}.parquet"
            if not path.exists():
                lines.append(f"{symbol}: no token_sequences yet")
                continue
            n_codes = _codebook_size(context.instance, symbol)
            if n_codes is None:
                lines.append(f"{symbol}: token_sequences recorded no codebook size (re-materialize them)")
                continue
            with path.open("rb") as handle:
                tokens = pq.read_table(handle, columns=["end_timestamp", "token"]).to_pandas()
            try:
                drift = token_drift(tokens, reference, recent_days=7, n_codes=n_codes)
            except ValueError as err:  # a window without tokens: nothing to compare, say so
                lines.append(f"{symbol}: {err}")
                continue
            lines.append(f"{symbol}: PSI {drift['psi']:.3f} (no-drift p95 {drift['psi_no_drift_p95']:.3f}) "
                         f"over {drift['recent_tokens']} recent tokens")
            observations.append(dg.AssetObservation(
                asset_key="token_sequences", partition=symbol,
                metadata={"drift_psi": drift["psi"], "drift_psi_no_drift_p95": drift["psi_no_drift_p95"],
                          "drift_threshold": threshold,
                          "drift_recent_tokens": drift["recent_tokens"],
                          "drift_reference_tokens": drift["reference_tokens"]}))
            if drift["psi"] > max(threshold, drift["psi_no_drift_p95"]):
                drifted.append(symbol)
        context.log.info("; ".join(lines) or "no symbols")
        requests = []
        if drifted:
            week = pd.Timestamp.now(tz="UTC").strftime("%G-W%V")
            requests.append(dg.RunRequest(run_key=f"drift-{week}", tags={"fin_ia/trigger": "token_drift",
                                                                         "fin_ia/drifted": ",".join(drifted)}))
        return dg.SensorResult(run_requests=requests, asset_events=observations)

    automation = dg.AutomationConditionSensorDefinition(
        "derived_assets", target=DERIVED_ASSETS, default_status=dg.DefaultSensorStatus.RUNNING,
        description="Keeps the derived assets (token sequences, embeddings, ...) up to date with their upstream assets.",
    )
    return dg.Definitions(jobs=[retrain], schedules=[weekly], sensors=[token_drift_sensor, automation])
