"""Pipeline settings read from the environment when the Definitions are built (never at import time).

| variable            | default                  | meaning |
|---------------------|--------------------------|---------|
| FIN_IA_SOURCE       | synthetic                | market source: synthetic, files or binance (any ccxt exchange id via FIN_IA_EXCHANGE) |
| FIN_IA_DATA         | ../shared/data/binance   | folder of candle files for FIN_IA_SOURCE=files |
| FIN_IA_EXCHANGE     | binance                  | ccxt exchange id for FIN_IA_SOURCE=binance |
| FIN_IA_SYMBOLS      | BTC/USDT,ETH/USDT        | symbols, one static partition each |
| FIN_IA_TIMEFRAME    | 1h                       | candle timeframe stored by ohlcv_candles |
| FIN_IA_START        | 2017-08-17               | first daily partition (first BTC/USDT candle on Binance spot) |
| FIN_IA_HOME         | ./.fin_ia                | local state root: parquet storage (and later MLflow, checkpoints) |
| FIN_IA_STORAGE      | $FIN_IA_HOME/storage     | asset storage root; any UPath URL (s3://bucket/x, gs://...) works |
| FIN_IA_SEED         | 0                        | seed of the synthetic market and of every training run |
| FIN_IA_PROFILE      | demo                     | compute profile: demo (CPU minutes) or full (H100 scale); picks sizes and the time split |
| FIN_IA_QUANTIZER    | fsq                      | Strate I tokenizer design: fsq (v6, SymLog + FSQ) or vq (v1, spherical VQ-VAE) |
| MLFLOW_TRACKING_URI | sqlite:///$FIN_IA_HOME/mlflow/mlflow.db | MLflow tracking store (a server URL on a cluster) |
| FIN_IA_MLFLOW_UI    | http://127.0.0.1:5000    | MLflow UI base URL used in run links |
| FIN_IA_EXECUTOR     | multiprocess             | multiprocess (one machine) or k8s (dagster-k8s k8s_job_executor: a pod per step) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fin_ia_models.config import TimeSplit, check_profile, time_split_for
from fin_ia_models.data.schema import timeframe_ms

SOURCES = ("synthetic", "files", "binance")


@dataclass(frozen=True)
class PipelineSettings:
    source: str = "synthetic"
    data_dir: str = "../shared/data/binance"
    exchange: str = "binance"
    symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT")
    timeframe: str = "1h"
    start_date: str = "2017-08-17"
    home: str = ".fin_ia"
    storage_root: str = field(default="")
    seed: int = 0
    profile: str = "demo"
    quantizer: str = "fsq"
    split: TimeSplit | None = None  # None: the profile's split (fin_ia_models.config.time_split_for)
    mlflow_tracking_uri: str = ""  # "" = sqlite store under home
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    executor: str = "multiprocess"  # or "k8s"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"FIN_IA_SOURCE must be one of {', '.join(SOURCES)}, got {self.source!r}")
        timeframe_ms(self.timeframe)
        if not self.symbols or any(not s or "," in s or "|" in s for s in self.symbols):
            raise ValueError(f"FIN_IA_SYMBOLS must be a comma-separated list like BTC/USDT,ETH/USDT, got {self.symbols!r}")
        pd.Timestamp(self.start_date)  # raises on a malformed date
        check_profile(self.profile)
        if self.executor not in ("multiprocess", "k8s"):
            raise ValueError(f"FIN_IA_EXECUTOR must be multiprocess or k8s, got {self.executor!r}")
        if self.quantizer not in ("fsq", "vq"):
            raise ValueError(f"FIN_IA_QUANTIZER must be fsq or vq, got {self.quantizer!r}")
        if not self.storage_root:
            object.__setattr__(self, "storage_root", str(Path(self.home) / "storage"))
        if not self.mlflow_tracking_uri:
            db = (Path(self.home) / "mlflow" / "mlflow.db").resolve()
            object.__setattr__(self, "mlflow_tracking_uri", f"sqlite:///{db}")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "PipelineSettings":
        env = os.environ if env is None else env
        home = env.get("FIN_IA_HOME", ".fin_ia")
        return cls(
            source=env.get("FIN_IA_SOURCE", "synthetic"),
            data_dir=env.get("FIN_IA_DATA", "../shared/data/binance"),
            exchange=env.get("FIN_IA_EXCHANGE", "binance"),
            symbols=tuple(s.strip() for s in env.get("FIN_IA_SYMBOLS", "BTC/USDT,ETH/USDT").split(",") if s.strip()),
            timeframe=env.get("FIN_IA_TIMEFRAME", "1h"),
            start_date=env.get("FIN_IA_START", "2017-08-17"),
            home=home,
            storage_root=env.get("FIN_IA_STORAGE", ""),
            seed=int(env.get("FIN_IA_SEED", "0")),
            profile=env.get("FIN_IA_PROFILE", "demo"),
            quantizer=env.get("FIN_IA_QUANTIZER", "fsq"),
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI", ""),
            mlflow_ui_url=env.get("FIN_IA_MLFLOW_UI", "http://127.0.0.1:5000"),
            executor=env.get("FIN_IA_EXECUTOR", "multiprocess"),
        )

    @property
    def mlflow_artifact_root(self) -> str | None:
        """Local artifact directory for the embedded sqlite store; a tracking server chooses its own."""
        if self.mlflow_tracking_uri.startswith("sqlite:"):
            return (Path(self.home) / "mlflow" / "artifacts").resolve().as_uri()
        return None

    def time_split(self) -> TimeSplit:
        """The one train/val/test split every stage uses."""
        return self.split if self.split is not None else time_split_for(self.profile)
