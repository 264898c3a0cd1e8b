"""Weekly retrain, drift-triggered retrain, and declarative automation of the derived assets.

- ``retrain_models`` job: tokenizer_model → token_sequences → jepa_encoder → jepa_embeddings (and the champion
  gates), one run. The weekly schedule launches it Sunday 03:00 UTC.
- ``token_drift`` sensor: every hour, PSI of each symbol's last week of tokens against its training window (10
  equal-mass frequency bins, see ``fin_ia_models.evaluation.drift``); when the PSI exceeds both ``FIN_IA_DRIFT_PSI``
  (default 0.25, the "large shift" rule of thumb) and the 95th percentile of PSI that samples of the same size
  from the training window itself produce, it requests a retrain run. The PSI is recorded as an observation of ``token_sequences`` (per symbol) so it shows in the UI.
- ``derived_assets`` automation sensor: evaluates the eager conditions on token_sequences / jepa_embeddings so they
  follow new candles and new models without a schedule.
"""

import os

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
from upath import UPath

from fin_ia_models.data.schema import symbol_slug
from fin_ia_models.evaluation.drift import token_drift
from fin_ia_pipeline.settings import PipelineSettings

TRAINED = ["tokenizer_model", "token_sequences", "jepa_encoder", "jepa_embeddings"]


def build_automation_defs(settings: PipelineSettings) -> dg.Definitions:
    retrain = dg.define_asset_job(
        "retrain_models",
        selection=dg.AssetSelection.assets(*TRAINED),
        description="Retrain Strate I and II on the latest stored candles and refresh their outputs.",
    )
    weekly = dg.ScheduleDefinition(
        name="weekly_retrain", cron_schedule="0 3 * * 0", execution_timezone="UTC", job=retrain,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Sunday 03:00 UTC: retrain the tokenizer and the world model.",
    )
    threshold = float(os.environ.get("FIN_IA_DRIFT_PSI", "0.25"))
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
            with path.open("rb") as handle:
                tokens = pq.read_table(handle, columns=["end_timestamp", "token"]).to_pandas()
            try:
                # the codebook is 1024 codes in every profile; a larger id means a larger codebook
                n_codes = max(1024, int(tokens["token"].max()) + 1)
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
        "derived_assets", target=dg.AssetSelection.assets("token_sequences", "jepa_embeddings"),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Keeps token_sequences and jepa_embeddings up to date with their upstream assets.",
    )
    return dg.Definitions(jobs=[retrain], schedules=[weekly], sensors=[token_drift_sensor, automation])
