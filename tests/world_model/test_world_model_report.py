"""Smoke test of the Strate II quality report (``world_model/report.py``): tiny tokenizer + tiny Fin-JEPA on two
synthetic symbols, a short split, a few steps — the probe table must come out complete, finite, on the right rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fin_ia_models.config import TimeSplit
from fin_ia_models.data.sources.synthetic import SyntheticMarket, SyntheticMarketConfig
from fin_ia_models.tokenizer.config import TokenizerConfig
from fin_ia_models.tokenizer.encode import encode_candles
from fin_ia_models.tokenizer.model import TokenizerModel
from fin_ia_models.utils.seeding import seed_everything
from fin_ia_models.world_model.config import ExoClockConfig, JEPAConfig, Mamba2Config
from fin_ia_models.world_model.probes import probe_targets
from fin_ia_models.world_model.report import PROBE_KEYS, jepa_report

DAY = 86_400_000


def test_jepa_report_smoke_on_synthetic_candles(tmp_path):
    origin = int(pd.Timestamp("2024-01-01", tz="UTC").value // 1_000_000)
    market = SyntheticMarket(SyntheticMarketConfig(seed=3, origin_ms=origin), clock=lambda: origin + 400 * DAY)
    candles = {s: market.fetch(s, "1h", origin, origin + 91 * DAY) for s in ("BTC/USDT", "ETH/USDT")}
    split = TimeSplit(train_start="2024-01-01", train_end="2024-02-20", val_start="2024-02-21", val_end="2024-03-05",
                      test_start="2024-03-06", test_end="2024-03-31", embargo_hours=24)
    seed_everything(0)
    tokenizer = TokenizerModel(TokenizerConfig(quantizer="fsq", hidden_dim=16, latent_dim=4)).eval()  # untrained
    config = JEPAConfig(vocab_size=tokenizer.codebook_size, n_latent=4, n_layers=1, seq_len=32, batch_size=4,
                        max_steps=3, mixer=Mamba2Config(d_model=32, headdim=16, d_state=8, chunk_size=16,
                                                        exo=ExoClockConfig(enabled=True)))

    report = jepa_report(candles, tokenizer, config, split, seed=0, output_dir=tmp_path)

    probes = report["probes"]
    for name in ("jepa", "untrained", "raw", "single"):
        for key in (*PROBE_KEYS, "n_train_rows"):
            assert np.isfinite(probes[f"{name}_{key}"]), f"{name}_{key} = {probes[f'{name}_{key}']}"
        assert probes[f"{name}_rv_r2"] <= 1.0
        assert 0.0 <= probes[f"{name}_sign_accuracy"] <= 1.0 and 0.0 <= probes[f"{name}_sign_auc"] <= 1.0
    # both probes score exactly the test tokens with a complete 24 h horizon, counted here independently
    test_start, test_end = split.range_ms("test")
    expected = 0
    for series in candles.values():
        ends = encode_candles(tokenizer, series)["end_timestamp"].to_numpy()
        ends = ends[(ends >= test_start) & (ends < test_end)]
        expected += int(probe_targets(series, ends, "1h")["rv_next"].notna().sum())
    assert expected > 10
    assert probes["jepa_n_test_rv_next"] == probes["raw_n_test_rv_next"] == probes["single_n_test_rv_next"] == expected
    assert probes["single_rv_now_r2"] > 0.999  # the single feature IS the current realized vol (ridge shrinks a hair)
    for symbol in candles:  # per-symbol scores too
        assert np.isfinite(probes[f"{symbol}:jepa_rv_r2"]) and np.isfinite(probes[f"{symbol}:mean_rv_r2"])
    # JEPA trained only on tokens ending before the end of the validation window
    _, train_end = split.range_ms("val")
    for symbol, counts in report["tokens"].items():
        ends = encode_candles(tokenizer, candles[symbol])["end_timestamp"].to_numpy()
        assert counts["train"] == int((ends < train_end).sum()) < counts["total"]
    assert report["training"]["tokens_seen"] == 3 * 4 * 32
    assert (tmp_path / "jepa_encoder.safetensors").is_file()
