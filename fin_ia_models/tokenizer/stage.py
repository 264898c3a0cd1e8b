"""Strate I's entry points for the orchestrator: ``fit_tokenizer`` (stored candle series and the time split in, a
``TrainingResult`` out with everything tracking needs: metrics, datasets, plots, examples) and ``tokenize_series``.

Trains on the training window (train + validation of the split: the tokenizer has no hyperparameter chosen on
validation, so both feed it) and scores on the test window's non-overlapping patches.
"""

from __future__ import annotations

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
from fin_ia_models.evaluation.plots import code_usage_png, loss_curve_png
from fin_ia_models.tokenizer.config import TokenizerConfig
from fin_ia_models.tokenizer.encode import encode_candles
from fin_ia_models.tokenizer.features import make_patches
from fin_ia_models.tokenizer.metrics import code_usage
from fin_ia_models.tokenizer.train import train_tokenizer
from fin_ia_models.tracking.datasets import dataset_ref
from fin_ia_models.training.result import TrainingResult

log = logging.getLogger("fin_ia.tokenizer")


def fit_tokenizer(candles: Mapping[str, pd.DataFrame], config: TokenizerConfig, split: TimeSplit, seed: int, *,
                  candles_source: str, checkpoint_dir: str | Path | None = None,
                  checkpoint_every_n_steps: int = 0) -> TrainingResult:
    """Train on ``candles`` (symbol → whole stored series) inside the split's training window, score on its test
    window. ``candles_source`` names where the candles are stored (for the dataset lineage)."""
    train_start, _ = split.range_ms("train")
    _, train_end = split.range_ms("val")
    test_start, test_end = split.range_ms("test")
    train = windows_by_symbol(candles, train_start, train_end, "timestamp")
    test = windows_by_symbol(candles, test_start, test_end, "timestamp")
    if not train or not test:
        raise ValueError(
            f"tokenizer_model needs stored ohlcv_candles in the training window {split.train_start} … "
            f"{split.val_end} and the test window {split.test_start} … {split.test_end}; found "
            f"{sorted(train)} / {sorted(test)}. Materialize those ohlcv_candles partitions first."
        )
    log.info("training %s tokenizer on %s: %d candles; test on %d", config.quantizer, ", ".join(train),
             sum(map(len, train.values())), sum(map(len, test.values())))
    with tempfile.TemporaryDirectory() as tmp:
        result = train_tokenizer(train, config, seed, tmp, eval_candles=test, checkpoint_dir=checkpoint_dir,
                                 checkpoint_every_n_steps=checkpoint_every_n_steps)
    result.checkpoint_path = None  # the temporary file is gone; the orchestrator stores the model itself
    model = result.model
    held_out = np.concatenate([encode_candles(model, f)["token"].to_numpy() for f in test.values()])
    counts = np.bincount(held_out, minlength=model.codebook_size)
    example = make_patches(next(iter(test.values())), config.patch_len, None, config.volume_window,
                           config.return_scale).values[:4]  # (4, L, C)
    with torch.no_grad():
        result.output_example = model.encode(torch.as_tensor(example))[0].numpy()
    result.input_example = example
    timeframe = next(iter(candles.values())).attrs["timeframe"]
    result.datasets = [dataset_ref("ohlcv_candles", train, "timestamp", timeframe, candles_source, "training"),
                       dataset_ref("ohlcv_candles", test, "timestamp", timeframe, candles_source, "evaluation")]
    result.info.update(quantizer=config.quantizer, train_window=f"{split.train_start} … {split.val_end}",
                       test_window=f"{split.test_start} … {split.test_end}",
                       train_patches=result.info.pop("n_train_patches"),
                       test_patches=result.info.pop("n_eval_patches"))
    m = result.metrics
    result.info["summary"] = (
        f"{config.quantizer}: test-window utilization {m['utilization']:.1%} (uniform ceiling for "
        f"{result.info['test_patches']} patches: {m['uniform_expected_utilization']:.1%}), perplexity "
        f"{m['perplexity']:.1f}, recon MAE {m['recon_mae']:.4g} (patch-mean baseline "
        f"{m['recon_mae_patch_mean_baseline']:.4g})")
    result.plots = {
        "codebook_usage": code_usage_png(counts, f"{config.quantizer} codebook usage on the test window"),
        "loss_curve": loss_curve_png(result.history, ["loss", "huber", "sdtw", "commit"],
                                     f"{config.quantizer} training loss"),
    }
    return result


def tokenize_series(model, series: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The token sequence of one symbol's stored series (``encode_candles``) and facts about it for metadata."""
    tokens = encode_candles(model, series)
    usage = code_usage(tokens["token"].to_numpy(), model.codebook_size) if len(tokens) else {}
    ends = tokens["end_timestamp"]
    return tokens, {
        "rows": len(tokens), "candles": len(series),
        "first_patch_end": format_ms(int(ends.iloc[0])) if len(tokens) else "-",
        "last_patch_end": format_ms(int(ends.iloc[-1])) if len(tokens) else "-",
        "codes_used": int(usage.get("codes_used", 0)), "perplexity": float(usage.get("perplexity", 0.0)),
        "codebook_size": model.codebook_size, "latent_dim": model.config.latent_dim,
        "summary": f"{len(tokens)} tokens from {len(series)} candles, {int(usage.get('codes_used', 0))} codes used",
    }
