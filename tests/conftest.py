"""Shared fixtures. Real candles live beside the repo in ../shared/data/binance (never copied into it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
BINANCE_DIR = REPO.parent / "shared" / "data" / "binance"


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny tensors on a shared 2-core machine: one torch thread avoids OpenMP oversubscription stalls (up to 10x
    slower otherwise). Session scope, so module-scoped fixtures that train run with the same thread count as the
    tests that retrain and compare bit for bit (CPU reductions are only reproducible at a fixed thread count)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def binance_dir() -> Path:
    if not (BINANCE_DIR / "BTCUSDT_1h.csv").exists():
        pytest.skip(f"real candles not found at {BINANCE_DIR}")
    return BINANCE_DIR


def make_candles(n: int = 48, start_ms: int = 1_704_067_200_000, step_ms: int = 3_600_000, seed: int = 0) -> pd.DataFrame:
    """A small valid candle frame (random walk) for unit tests; symbol TEST/USDT, timeframe from ``step_ms``."""
    from fin_ia_models.data.schema import TIMEFRAME_MS, with_meta

    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    frame = pd.DataFrame(
        {
            "timestamp": start_ms + step_ms * np.arange(n, dtype=np.int64),
            "open": open_, "high": high, "low": low, "close": close,
            "volume": rng.uniform(1, 10, n),
        }
    )
    timeframe = {v: k for k, v in TIMEFRAME_MS.items()}[step_ms]
    return with_meta(frame, "TEST/USDT", timeframe)
