"""Pipeline settings: one frozen dataclass, read from the environment when the Definitions are built (never at import).

Every field is its own default, and names its environment variable and meaning in its metadata, so a default is
written exactly once. ``python -m fin_ia_pipeline.settings`` prints the table (variable, default, meaning).
A malformed value is an error that names the variable and the value it got.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fin_ia_models.config import PROFILES, TimeSplit, check_profile, time_split_for
from fin_ia_models.data.schema import check_symbols, timeframe_ms
from fin_ia_models.tokenizer.config import QUANTIZERS, TokenizerConfig
from fin_ia_pipeline.compute import GpuPodSpec

SOURCES = ("synthetic", "files", "binance")
EXECUTORS = ("in_process", "multiprocess", "k8s")


def _env(var: str, meaning: str) -> dict:
    return {"env": var, "meaning": meaning}


@dataclass(frozen=True)
class PipelineSettings:
    source: str = field(default="synthetic", metadata=_env(
        "FIN_IA_SOURCE", f"market source: {', '.join(SOURCES)} (any ccxt exchange id via FIN_IA_EXCHANGE)"))
    data_dir: str = field(default="../shared/data/binance", metadata=_env(
        "FIN_IA_DATA", "folder of candle files for FIN_IA_SOURCE=files"))
    exchange: str = field(default="binance", metadata=_env("FIN_IA_EXCHANGE", "ccxt exchange id for the live source"))
    symbols: tuple[str, ...] = field(default=("BTC/USDT", "ETH/USDT"), metadata=_env(
        "FIN_IA_SYMBOLS", "comma-separated symbols (BASE/QUOTE), one static partition each"))
    timeframe: str = field(default="1h", metadata=_env("FIN_IA_TIMEFRAME", "candle timeframe stored by ohlcv_candles"))
    start_date: str = field(default="2017-08-17", metadata=_env(
        "FIN_IA_START", "first daily partition (first BTC/USDT candle on Binance spot)"))
    home: str = field(default=".fin_ia", metadata=_env(
        "FIN_IA_HOME", "local state root: parquet storage, MLflow store, training checkpoints"))
    storage_root: str = field(default="", metadata=_env(
        "FIN_IA_STORAGE", "asset storage root (default $FIN_IA_HOME/storage); any UPath URL (s3://, gs://) works"))
    seed: int = field(default=0, metadata=_env("FIN_IA_SEED", "seed of the synthetic market and of every training run"))
    profile: str = field(default="demo", metadata=_env(
        "FIN_IA_PROFILE", f"compute profile: {', '.join(PROFILES)} (sizes and the time split; fin_ia_models.config)"))
    quantizer: str = field(default=TokenizerConfig.quantizer, metadata=_env(
        "FIN_IA_QUANTIZER", "Strate I design: fsq (v6, SymLog + FSQ) or vq (v1, spherical VQ-VAE)"))
    split: TimeSplit | None = None  # None: the profile's split (fin_ia_models.config.time_split_for); tests pass one
    mlflow_tracking_uri: str = field(default="", metadata=_env(
        "MLFLOW_TRACKING_URI", "MLflow tracking store (default sqlite under $FIN_IA_HOME/mlflow; a server URL)"))
    mlflow_ui_url: str = field(default="http://127.0.0.1:5000", metadata=_env(
        "FIN_IA_MLFLOW_UI", "MLflow UI base URL used in run links"))
    executor: str = field(default="in_process", metadata=_env(
        "FIN_IA_EXECUTOR", "in_process (one process per run), multiprocess (a process per step) or k8s (a pod per step)"))
    drift_psi: float = field(default=0.25, metadata=_env(
        "FIN_IA_DRIFT_PSI", "token-drift PSI above which (and above its sampling noise) a retrain is requested"))
    # the GPU pod's defaults live with the rest of the GPU declaration (compute.py)
    gpu_count: int = field(default=GpuPodSpec.gpus, metadata=_env("FIN_IA_GPU_COUNT", "GPUs per GPU step pod"))
    gpu_pod_cpu: str = field(default=GpuPodSpec.cpu, metadata=_env(
        "FIN_IA_GPU_POD_CPU", "CPU request = limit of a GPU pod"))
    gpu_pod_memory: str = field(default=GpuPodSpec.memory, metadata=_env(
        "FIN_IA_GPU_POD_MEMORY", "memory request = limit of a GPU pod"))
    gpu_node_label: str = field(default=GpuPodSpec.node_selector_key, metadata=_env(
        "FIN_IA_GPU_NODE_LABEL", "node label selecting the GPU node pool"))
    gpu_node_value: str = field(default=GpuPodSpec.node_selector_value, metadata=_env(
        "FIN_IA_GPU_NODE_VALUE", "value of that label (the GPU node pool)"))

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"FIN_IA_SOURCE must be one of {', '.join(SOURCES)}, got {self.source!r}")
        timeframe_ms(self.timeframe)
        if not self.symbols:
            raise ValueError(f"FIN_IA_SYMBOLS must be a comma-separated list like BTC/USDT,ETH/USDT, got {self.symbols!r}")
        try:
            check_symbols(self.symbols)  # canonical BASE/QUOTE, and no two sharing one storage name
        except ValueError as err:
            raise ValueError(f"FIN_IA_SYMBOLS: {err}") from None
        _check_start_date(self.start_date)
        check_profile(self.profile)
        if self.executor not in EXECUTORS:
            raise ValueError(f"FIN_IA_EXECUTOR must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"FIN_IA_QUANTIZER must be one of {', '.join(QUANTIZERS)}, got {self.quantizer!r}")
        if self.drift_psi <= 0 or self.gpu_count < 1:
            raise ValueError(f"FIN_IA_DRIFT_PSI must be > 0 and FIN_IA_GPU_COUNT >= 1, got {self.drift_psi}, "
                             f"{self.gpu_count}")
        if not self.storage_root:
            object.__setattr__(self, "storage_root", str(Path(self.home) / "storage"))
        if not self.mlflow_tracking_uri:
            db = (Path(self.home) / "mlflow" / "mlflow.db").resolve()
            object.__setattr__(self, "mlflow_tracking_uri", f"sqlite:///{db}")
        split = self.time_split()
        if pd.Timestamp(self.start_date) > pd.Timestamp(split.train_start):
            raise ValueError(f"FIN_IA_START={self.start_date} is after the start of the {self.profile!r} profile's "
                             f"training window ({split.train_start}): those candles would never be partitions. Set "
                             f"FIN_IA_START to {split.train_start} or earlier.")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "PipelineSettings":
        """Settings from ``env`` (default ``os.environ``); unset variables keep the field defaults."""
        env = os.environ if env is None else env
        values = {}
        for f in dataclasses.fields(cls):
            var = f.metadata.get("env")
            if var is None or var not in env:
                continue
            values[f.name] = _parse(var, env[var], f.type)
        return cls(**values)

    @property
    def mlflow_artifact_root(self) -> str | None:
        """Local artifact directory for the embedded sqlite store; a tracking server chooses its own."""
        if self.mlflow_tracking_uri.startswith("sqlite:"):
            return (Path(self.home) / "mlflow" / "artifacts").resolve().as_uri()
        return None

    def time_split(self) -> TimeSplit:
        """The one train/val/test split every stage uses."""
        return self.split if self.split is not None else time_split_for(self.profile)


def _parse(var: str, raw: str, annotation: str):
    """An environment string as the field's type; errors name the variable."""
    if annotation == "int":
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{var} must be an integer, got {raw!r}") from None
    if annotation == "float":
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{var} must be a number, got {raw!r}") from None
    if annotation.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def _check_start_date(value: str) -> None:
    try:
        day = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ValueError(f"FIN_IA_START must be a date like 2017-08-17, got {value!r}") from None
    if value.strip().lower() in ("now", "today") or day.normalize() != day or day.tzinfo is not None:
        raise ValueError(f"FIN_IA_START must be a calendar date like 2017-08-17, got {value!r}")
    if day > pd.Timestamp.now().normalize():
        raise ValueError(f"FIN_IA_START={value} is in the future: there is nothing to partition yet")


def settings_table() -> str:
    """Markdown table of every environment variable, its default and meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(PipelineSettings):
        if "env" in f.metadata:
            default = ",".join(f.default) if isinstance(f.default, tuple) else f.default
            rows.append(f"| {f.metadata['env']} | {default!s} | {f.metadata['meaning']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.stdout.write(settings_table() + "\n")
