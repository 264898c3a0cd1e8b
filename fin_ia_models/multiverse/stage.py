"""Strate III's entry points for the orchestrator: ``fit_multiverse`` (token sequences, JEPA embeddings, candles, the
tokenizer and the time split in; a ``TrainingResult`` out with validation scores for the champion gate, test scores
reported only, datasets, plots and examples) and ``multiverse_trajectories`` (one symbol's futures frame).

Windows: the multiverse trains on origins of the split's TRAINING window whose targets also end inside it; the
validation window (after the embargo) chooses and gates; the test window is scored for the report only. Upstream,
the tokenizer and Fin-JEPA were trained on train + validation (they choose nothing on validation), so the validation
score of the multiverse reads representations fitted on those months: a mild optimism shared by every candidate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from fin_ia_models.config import TimeSplit
from fin_ia_models.data.schema import format_ms, timeframe_ms
from fin_ia_models.data.series import windows_by_symbol
from fin_ia_models.evaluation.plots import loss_curve_png
from fin_ia_models.multiverse.config import MultiverseConfig
from fin_ia_models.multiverse.context import SymbolContext, build_context
from fin_ia_models.multiverse.evaluate import MODEL, evaluate_window, fit_baselines
from fin_ia_models.multiverse.figures import calibration_png, fan_week_png, pit_png
from fin_ia_models.multiverse.targets import future_targets
from fin_ia_models.multiverse.train import train_multiverse
from fin_ia_models.multiverse.trajectories import summary_frame
from fin_ia_models.tracking.datasets import dataset_ref
from fin_ia_models.training.result import TrainingResult

log = logging.getLogger("fin_ia.multiverse")


def check_versions(config: MultiverseConfig, tokenizer_version: str, jepa_version: str) -> None:
    """Refuse inputs made by another tokenizer or Fin-JEPA than the ones the multiverse was trained on."""
    for what, given, trained in (("tokenizer", tokenizer_version, config.tokenizer_version),
                                 ("Fin-JEPA", jepa_version, config.jepa_version)):
        if given != trained:
            raise ValueError(f"the inputs were made by {what} {given!r}, but this multiverse was trained on {what} "
                             f"{trained!r}: retrain the multiverse or recompute the inputs with {trained!r}")


def symbol_contexts(tokens: Mapping[str, pd.DataFrame], embeddings: Mapping[str, pd.DataFrame],
                    candles: Mapping[str, pd.DataFrame], config: MultiverseConfig) -> dict[str, SymbolContext]:
    """``build_context`` for every symbol with tokens; its embeddings and candles must be there too."""
    out = {}
    for symbol, frame in sorted(tokens.items()):
        for what, frames in (("jepa_embeddings", embeddings), ("ohlcv_candles", candles)):
            if symbol not in frames:
                raise ValueError(f"no {what} for {symbol}: materialize them first")
        out[symbol] = build_context(frame, embeddings[symbol], candles[symbol], config)
    return out


def token_ms(candles: pd.DataFrame, config: MultiverseConfig) -> int:
    return config.tokenizer.patch_len * timeframe_ms(candles.attrs["timeframe"])


def training_arrays(contexts: Mapping[str, SymbolContext], candles: Mapping[str, pd.DataFrame],
                    config: MultiverseConfig, start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(features (n, F), targets (n, H, d)) of usable origins in [start_ms, end_ms) whose targets end before end_ms."""
    features, targets = [], []
    for symbol, context in contexts.items():
        step = token_ms(candles[symbol], config)
        y, valid = future_targets(context, config.horizon, step)
        ts = context.end_timestamp
        rows = context.usable & valid & (ts >= start_ms) & (ts + config.horizon * step < end_ms)
        features.append(context.features[rows])
        targets.append(y[rows])
    return np.concatenate(features), np.concatenate(targets)


def fit_multiverse(tokens: Mapping[str, pd.DataFrame], embeddings: Mapping[str, pd.DataFrame],
                   candles: Mapping[str, pd.DataFrame], tokenizer, config: MultiverseConfig, split: TimeSplit,
                   seed: int, *, tokens_source: str, embeddings_source: str, candles_source: str,
                   checkpoint_dir: str | Path | None = None, checkpoint_every_n_steps: int = 0) -> TrainingResult:
    """Train on the training window, score validation (``val_*``: chooses and gates) and test (``test_*``: report)."""
    if tokenizer.config != config.tokenizer:
        raise ValueError("config.tokenizer differs from the tokenizer passed: build the config from that tokenizer")
    contexts = symbol_contexts(tokens, embeddings, candles, config)
    train_start, train_end = split.range_ms("train")
    features, targets = training_arrays(contexts, candles, config, train_start, train_end)
    if len(features) < 2:
        raise ValueError(f"multiverse_model needs training contexts: {len(features)} usable tokens with complete "
                         f"{config.horizon}-token targets end in the training window {split.train_start} … "
                         f"{split.train_end}; materialize more token_sequences / jepa_embeddings there")
    result = train_multiverse(features, targets, config, seed, tokenizer, checkpoint_dir=checkpoint_dir,
                              checkpoint_every_n_steps=checkpoint_every_n_steps)
    model = result.model
    baselines = {s: fit_baselines(candles[s], train_start, train_end) for s in contexts}
    windows = {name: split.range_ms(name) for name in ("val", "test")}
    evaluations = {name: evaluate_window(model, contexts, candles, baselines, *bounds, seed)
                   for name, bounds in windows.items()}
    for name, evaluation in evaluations.items():
        result.metrics.update(evaluation.metrics(name))
    h = max(config.eval_horizons)
    first = next(iter(evaluations["test"].forecasts))
    result.plots = {
        "loss_curve": loss_curve_png(result.history, ["loss"], f"{config.predictor} multiverse training loss"),
        "calibration_val": calibration_png(evaluations["val"], h, f"validation: coverage of the {h}-candle return "
                                                                  "and realized vol"),
        "pit_val": pit_png(evaluations["val"], h, f"validation PIT, {h}-candle targets"),
        "fan_chart_test": fan_week_png(evaluations["test"].forecasts[first], candles[first], windows["test"][0],
                                       first),
    }
    timeframe = next(iter(candles.values())).attrs["timeframe"]
    result.datasets = [
        dataset_ref("token_sequences", windows_by_symbol(tokens, train_start, train_end), "end_timestamp", timeframe,
                    tokens_source, "training", {"tokenizer_model": config.tokenizer_version}),
        dataset_ref("jepa_embeddings", windows_by_symbol(embeddings, train_start, train_end), "end_timestamp",
                    timeframe, embeddings_source, "training", {"jepa_encoder": config.jepa_version}),
        dataset_ref("ohlcv_candles", candles, "timestamp", timeframe, candles_source, "targets_and_baselines"),
    ]
    result.input_example = features[:4].copy()
    stamps = contexts[first].end_timestamp[:4]
    result.output_example = model.sample(stamps, features[:4], 8, config.horizon, seed).step_returns()  # (4, 8, H)
    m = result.metrics
    result.info.update(predictor=config.predictor, train_window=f"{split.train_start} … {split.train_end}",
                       val_window=f"{split.val_start} … {split.val_end}",
                       test_window=f"{split.test_start} … {split.test_end}",
                       tokenizer_version=config.tokenizer_version, jepa_version=config.jepa_version)
    result.info["summary"] = (
        f"{config.predictor}: validation CRPS of the {h}-candle return {m[f'val_{MODEL}_crps_ret_{h}c']:.4g} "
        f"(skill vs best baseline {m[f'val_skill_crps_ret_{h}c']:+.1%}), realized vol "
        f"{m[f'val_{MODEL}_crps_rv_{h}c']:.4g} ({m[f'val_skill_crps_rv_{h}c']:+.1%}); 90 % coverage "
        f"{m[f'val_{MODEL}_coverage_ret_90_{h}c']:.0%} / {m[f'val_{MODEL}_coverage_rv_90_{h}c']:.0%}")
    log.info("%s", result.info["summary"])
    return result


def sample_usable(model, tokens: pd.DataFrame, embeddings: pd.DataFrame, candles: pd.DataFrame, seed: int,
                  n_futures: int | None = None):
    """(``Trajectories`` of every usable token of one symbol, its ``Context``): ``n_futures`` (default the config's
    ``n_eval_futures``) futures of ``horizon`` tokens, seeded per origin — what ``multiverse_trajectories`` stores,
    the agents' report trains on and the live batch path replays."""
    config = model.config
    context = build_context(tokens, embeddings, candles, config)
    rows = np.flatnonzero(context.usable)
    traj = model.sample(context.end_timestamp[rows], context.features[rows], n_futures or config.n_eval_futures,
                        config.horizon, seed)
    return traj, context


def multiverse_trajectories(model, tokens: pd.DataFrame, embeddings: pd.DataFrame, candles: pd.DataFrame,
                            split: TimeSplit, seed: int, *, symbol: str, tokenizer_version: str,
                            jepa_version: str) -> tuple[pd.DataFrame, dict]:
    """Futures of every usable token of one symbol (``trajectories.summary_frame``) and facts for metadata: the
    test-window scores of the stored futures against the baselines, a calibration plot and a fan chart."""
    config = model.config
    check_versions(config, tokenizer_version, jepa_version)
    traj, context = sample_usable(model, tokens, embeddings, candles, seed)
    frame = summary_frame(traj, config.eval_horizons)
    facts: dict = {"rows": len(frame), "tokens": len(context), "n_futures": config.n_eval_futures,
                   "horizon_tokens": config.horizon, "first_end": format_ms(int(frame["end_timestamp"].iloc[0])),
                   "last_end": format_ms(int(frame["end_timestamp"].iloc[-1])), "plots": {}}
    facts["summary"] = f"{len(frame)} tokens × {config.n_eval_futures} futures × {config.horizon} tokens"
    train_start, train_end = split.range_ms("train")
    test = split.range_ms("test")
    baselines = {symbol: fit_baselines(candles, train_start, train_end)}
    try:
        evaluation = evaluate_window(model, {symbol: context}, {symbol: candles}, baselines, *test, seed)
    except ValueError as err:  # no scorable origin in the test window: say so instead of inventing scores
        facts["test_scores"] = f"none: {err}"
        return frame, facts
    facts["scores"] = evaluation.metrics("test", symbol)
    h = max(config.eval_horizons)
    facts["plots"] = {"calibration_test": calibration_png(evaluation, h, f"{symbol} test window: coverage, {h} "
                                                                        "candles"),
                      "fan_chart_test": fan_week_png(evaluation.forecasts[symbol], candles, test[0], symbol)}
    return frame, facts
