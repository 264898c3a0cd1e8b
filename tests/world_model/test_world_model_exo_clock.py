"""Exo-clock: off = the plain v1 block; on = dt follows the documented formula; exo signals are causal."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from fin_ia_models.world_model.config import ExoClockConfig, Mamba2Config
from fin_ia_models.world_model.exo_signals import exo_from_candles
from fin_ia_models.world_model.mamba2 import Mamba2Mixer




HOUR = 3_600_000


def _pair(exo_cfg: ExoClockConfig) -> tuple[Mamba2Mixer, Mamba2Mixer]:
    torch.manual_seed(0)
    plain = Mamba2Mixer(Mamba2Config(d_model=32, headdim=16, chunk_size=8))
    clocked = Mamba2Mixer(Mamba2Config(d_model=32, headdim=16, chunk_size=8, exo=exo_cfg))
    missing, unexpected = clocked.load_state_dict(plain.state_dict(), strict=False)
    assert missing == (["exo_clock.w"] if exo_cfg.enabled else []) and unexpected == []
    return plain, clocked


def test_switch_off_is_the_plain_block():
    plain, off = _pair(ExoClockConfig(enabled=False))
    assert off.exo_clock is None
    assert set(off.state_dict()) == set(plain.state_dict())
    u, z = torch.randn(2, 20, 32), torch.randn(2, 20, 2) * 3
    with torch.no_grad():
        torch.testing.assert_close(off(u, z), plain(u), rtol=0, atol=0)  # exo is ignored when off


def test_switch_on_with_neutral_signals_equals_plain_and_reacts_otherwise():
    plain, on = _pair(ExoClockConfig(enabled=True))
    u = torch.randn(2, 20, 32)
    with torch.no_grad():
        torch.testing.assert_close(on(u, torch.zeros(2, 20, 2)), plain(u), rtol=1e-6, atol=1e-6)
        assert not torch.allclose(on(u, torch.full((2, 20, 2), 2.0)), plain(u), atol=1e-4)
    with pytest.raises(ValueError, match="exo-clock is enabled"):
        on(u)


def test_dt_formula_exact_value_and_monotone():
    cfg = ExoClockConfig(enabled=True, weight_init=0.5, z_clip=4.0)
    _, on = _pair(cfg)
    with torch.no_grad():
        on.exo_clock.w.copy_(torch.tensor([[math.log(math.expm1(0.5))] * 4, [math.log(math.expm1(0.25))] * 4]))
        raw = torch.randn(1, 3, 4)
        base = torch.nn.functional.softplus(raw + on.dt_bias)
        z = torch.tensor([[[1.0, 2.0], [-1.0, 0.0], [10.0, -10.0]]])  # the last row is clipped to (4, -4)
        dt = on._dt(raw, z)
    factors = torch.tensor([math.exp(0.5 * 1 + 0.25 * 2), math.exp(-0.5), math.exp(0.5 * 4 - 0.25 * 4)])
    torch.testing.assert_close(dt, base * factors[None, :, None], rtol=1e-6, atol=1e-8)
    # strictly increasing in each signal, for every head, whatever the raw dt
    zs = torch.linspace(-3, 3, 13)
    for k in range(2):
        z = torch.zeros(1, 13, 2)
        z[0, :, k] = zs
        with torch.no_grad():
            d = on._dt(raw[:, :1].expand(1, 13, 4), z)
        assert (d[0, 1:] > d[0, :-1]).all()


def test_dt_limit_clamps_after_the_clock():
    cfg = Mamba2Config(d_model=32, headdim=16, dt_limit=(0.0, 0.2), exo=ExoClockConfig(enabled=True, weight_init=2.0))
    mixer = Mamba2Mixer(cfg)
    with torch.no_grad():
        dt = mixer._dt(torch.zeros(1, 1, 4), torch.full((1, 1, 2), 4.0))
    assert torch.all(dt == 0.2)


def _candles(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame({"timestamp": np.arange(n, dtype=np.int64) * HOUR, "open": close, "high": close * 1.01,
                         "low": close * 0.99, "close": close, "volume": rng.uniform(1, 10, n)})


def test_exo_signals_values_and_causality():
    candles = _candles(800)
    ends = (np.arange(3, 50) * 16 - 1).astype(np.int64) * HOUR  # last candle open time of each 16-candle patch
    exo = exo_from_candles(candles, ends, patch_len=16, timeframe="1h", window=20, min_periods=5)
    assert list(exo.columns) == ["end_timestamp", "exo_vol", "exo_volume", "scale_ret", "scale_volume"]
    # hand value for row k: z-score of log rv over rows k-19..k (rolling window 20)
    close, vol = candles["close"].to_numpy(), candles["volume"].to_numpy()
    raw = []
    for e in ends // HOUR:
        r = np.diff(np.log(close[e - 16: e + 1]))  # the 16 returns ending at candle e (first uses the prior close)
        raw.append((np.log(np.sqrt((r**2).sum())), np.log(vol[e - 15: e + 1].sum())))
    raw = np.array(raw)
    k = 30
    for j, col in enumerate(("exo_vol", "exo_volume")):
        w = raw[k - 19: k + 1, j]
        assert exo[col].iloc[k] == pytest.approx((w[-1] - w.mean()) / w.std(ddof=1), rel=1e-4)
    assert (exo[["exo_vol", "exo_volume"]].iloc[:4] == 0).all().all()  # fewer than min_periods: neutral
    # perturbing candles after a token's last candle leaves that token's and earlier rows unchanged
    cut = int(ends[25] // HOUR)
    shocked = candles.copy()
    shocked.loc[cut + 1:, ["close", "volume"]] *= 3.0
    exo2 = exo_from_candles(shocked, ends, patch_len=16, timeframe="1h", window=20, min_periods=5)
    pd.testing.assert_frame_equal(exo.iloc[:26], exo2.iloc[:26])
    assert not exo.iloc[26:].equals(exo2.iloc[26:])


def test_volatility_shock_raises_exo_vol():
    candles = _candles(800)
    ends = (np.arange(3, 50) * 16 - 1).astype(np.int64) * HOUR
    shocked = candles.copy()
    e = int(ends[40] // HOUR)
    shocked.loc[e - 10: e, "close"] *= np.exp(np.random.default_rng(1).normal(0, 0.08, 11))
    z = exo_from_candles(shocked, ends, 16, "1h", window=20, min_periods=5)["exo_vol"].to_numpy()
    assert z[40] > 2.0
