"""Strate II's entry points for the orchestrator: ``fit_jepa`` (token sequences, candles and the time split in; a
``TrainingResult`` out with probe scores, collapse stats, datasets, plots and examples) and ``embed_tokens``."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fin_ia_models.config import TimeSplit
from fin_ia_models.data.schema import format_ms
from fin_ia_models.data.series import windows_by_symbol
from fin_ia_models.evaluation.plots import loss_curve_png
from fin_ia_models.tracking.datasets import dataset_ref
from fin_ia_models.training.result import TrainingResult
from fin_ia_models.world_model.config import JEPAConfig
from fin_ia_models.world_model.embed import embed_sequence
from fin_ia_models.world_model.exo_signals import exo_from_candles
from fin_ia_models.world_model.probes import gate_metrics, probe_scores
from fin_ia_models.world_model.sequences import exo_columns, latent_columns
from fin_ia_models.world_model.train import train_jepa

log = logging.getLogger("fin_ia.world_model")


def jepa_config_for(tokenizer, base: JEPAConfig, *, exo_clock: bool, use_latents: bool) -> JEPAConfig:
    """``base`` sized to ``tokenizer`` (vocabulary = its codebook, latent width = its latent) with the exo-clock and
    the latent inputs switched as asked."""
    mixer = dataclasses.replace(base.mixer, exo=dataclasses.replace(base.mixer.exo, enabled=exo_clock))
    return dataclasses.replace(base, vocab_size=tokenizer.codebook_size,
                               n_latent=tokenizer.config.latent_dim if use_latents else 0, mixer=mixer)


def exo_by_symbol(tokens: Mapping[str, pd.DataFrame], candles: Mapping[str, pd.DataFrame],
                  patch_len: int) -> dict[str, pd.DataFrame]:
    """Exo-clock signals for every token, computed causally from that symbol's candles."""
    out = {}
    for symbol, frame in tokens.items():
        if symbol not in candles:
            raise ValueError(f"no candles for {symbol}: the exo-clock needs them (materialize ohlcv_candles)")
        series = candles[symbol]
        out[symbol] = exo_from_candles(series, frame["end_timestamp"].to_numpy(np.int64), patch_len,
                                       series.attrs["timeframe"])
    return out


def fit_jepa(tokens: Mapping[str, pd.DataFrame], candles: Mapping[str, pd.DataFrame], config: JEPAConfig,
             patch_len: int, split: TimeSplit, seed: int, *, tokens_source: str, candles_source: str,
             tokenizer_version: str, checkpoint_dir: str | Path | None = None,
             checkpoint_every_n_steps: int = 0) -> TrainingResult:
    """Train Fin-JEPA on the tokens ending in the split's training window; probe its embeddings (fit on train +
    validation tokens, scored on the test window). ``tokenizer_version`` (name/version) tags the token datasets."""
    tokens = {s: f for s, f in sorted(tokens.items()) if len(f)}
    if not tokens:
        raise ValueError("jepa_encoder needs token_sequences with rows: materialize token_sequences first")
    exo = exo_by_symbol(tokens, candles, patch_len) if exo_columns(config) else None
    train_start, _ = split.range_ms("train")
    _, train_end = split.range_ms("val")
    test_start, test_end = split.range_ms("test")
    train_tokens = windows_by_symbol(tokens, train_start, train_end)
    log.info("training Fin-JEPA (exo-clock %s) on %s", "on" if config.mixer.exo.enabled else "off",
             ", ".join(f"{s}: {len(f)} tokens" for s, f in train_tokens.items()))
    with tempfile.TemporaryDirectory() as tmp:
        result = train_jepa(train_tokens, config, seed, tmp, exo=exo, checkpoint_dir=checkpoint_dir,
                            checkpoint_every_n_steps=checkpoint_every_n_steps)
    result.checkpoint_path = None  # the temporary file is gone; the orchestrator stores the model itself
    # test-window probes (fit on train + validation tokens) are reported; the gate reads only the validation window
    # (fit on training tokens): JEPA must beat the single feature "log realized vol of the last 24 h" there
    encoders = {"jepa": result.model}
    scores = {k: v for k, v in probe_scores(encoders, tokens, exo, candles, split, "test").items() if ":" not in k}
    val = {k: v for k, v in probe_scores(encoders, tokens, exo, candles, split, "val").items() if ":" not in k}
    log.info("probes on the test window: %s", ", ".join(f"{k}={v:.4g}" for k, v in scores.items()))
    result.metrics.update({f"probe_{k}": v for k, v in scores.items()})
    result.metrics.update({f"val_probe_{k}": v for k, v in val.items()})
    result.metrics.update(gate_metrics(val))
    result.metrics["final_loss"] = result.history[-1]["loss"]
    first_symbol, first = next(iter(train_tokens.items()))
    example = first["token"].to_numpy(np.int64)[None, : min(32, len(first))].copy()  # (1, L), writable
    with torch.no_grad():
        result.output_example = result.model.context_encoder(
            torch.as_tensor(example), *_extras(first, None if exo is None else exo[first_symbol], config,
                                               example.shape[1])).numpy()
    result.input_example = example
    timeframe = next(iter(candles.values())).attrs["timeframe"]
    tag = {"tokenizer_model": tokenizer_version}
    result.datasets = [
        dataset_ref("token_sequences", train_tokens, "end_timestamp", timeframe, tokens_source, "training", tag),
        dataset_ref("token_sequences", windows_by_symbol(tokens, test_start, test_end), "end_timestamp", timeframe,
                    tokens_source, "evaluation", tag),
        dataset_ref("ohlcv_candles", candles, "timestamp", timeframe, candles_source, "exo_signals_and_probe_targets"),
    ]
    result.info.update(exo_clock=config.mixer.exo.enabled, scale_inputs=config.scale_inputs,
                       train_window=f"{split.train_start} … {split.val_end}",
                       test_window=f"{split.test_start} … {split.test_end}")
    m = result.metrics
    result.info["summary"] = (
        f"{config.max_steps} steps, final loss {m['final_loss']:.4g}, effective rank "
        f"{m['final_collapse_effective_rank']:.1f}/{int(m['final_collapse_dim'])}; test-window probe R² of next-24h "
        f"realized vol: JEPA {m['probe_jepa_rv_r2']:.3f} vs raw features {m['probe_raw_rv_r2']:.3f} vs single "
        f"feature {m['probe_single_rv_r2']:.3f}; validation JEPA − single {m['val_jepa_minus_single_rv_r2']:+.3f}")
    result.plots = {"loss_curve": loss_curve_png(result.history, ["loss", "jepa"], "Fin-JEPA training loss",
                                                 xlabel="step")}
    return result


def _extras(frame: pd.DataFrame, exo: pd.DataFrame | None, config: JEPAConfig, length: int) -> tuple:
    """(latents, exo) tensors of the first ``length`` rows of ``frame``, as the context encoder takes them."""
    latents = None
    if config.n_latent:
        latents = torch.as_tensor(frame[latent_columns(frame)].to_numpy(np.float32)[None, :length].copy())
    exo_t = None
    if exo is not None:
        exo_t = torch.as_tensor(exo[list(exo_columns(config))].to_numpy(np.float32)[None, :length].copy())
    return latents, exo_t


def embed_tokens(model, tokens: pd.DataFrame, candles: pd.DataFrame | None, patch_len: int) -> tuple[pd.DataFrame,
                                                                                                      dict]:
    """Per-token context embeddings of one symbol (causal) and facts about them for metadata. ``candles`` (the
    symbol's stored series) feed the exo-clock when the model uses it."""
    exo = None
    if exo_columns(model.config):
        if candles is None:
            raise ValueError("this Fin-JEPA reads exo/scale inputs: pass the symbol's candles")
        symbol = tokens.attrs.get("symbol", "symbol")
        exo = exo_by_symbol({symbol: tokens}, {symbol: candles}, patch_len)[symbol]
    emb = embed_sequence(model, tokens, exo)
    ends = emb["end_timestamp"]
    d = model.config.mixer.d_model
    return emb, {"rows": len(emb), "dim": d, "first_end": format_ms(int(ends.iloc[0])) if len(emb) else "-",
                 "last_end": format_ms(int(ends.iloc[-1])) if len(emb) else "-", "summary": f"{len(emb)}×{d}"}
