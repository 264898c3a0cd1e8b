"""``python -m fin_ia_models.multiverse.report``: Strate III's forecast scores on real Binance candles (issue 9).

Upstream: the tokenizer and Fin-JEPA are loaded (``--tokenizer``/``--jepa``, e.g. the files written by
``python -m fin_ia_models.world_model.report``) or trained here on candles up to the end of the validation window
(``cpu`` profile, seed ``--upstream-seed``). Tokens (non-overlapping patches) and the causal JEPA embeddings are made
through the stage contracts (``encode_candles``, ``embed_tokens``).

For each predictor and multiverse seed: train on origins of the training window (≤ 2023-09-30, targets inside it),
then score ``--window`` ONLY: ``val`` (2023-10-02 … 2023-12-31, where everything is chosen) or ``test`` (2024, scored
once per pre-declared configuration). Baselines (block bootstrap, GARCH(1,1)-t, random walk) are fitted per symbol on
the same training window and scored on the same origins and targets. Prints a markdown table (mean ± std over seeds)
and writes every number to JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fin_ia_models.config import PROFILES, TimeSplit
from fin_ia_models.data.sources.files import read_candle_file
from fin_ia_models.multiverse.config import PREDICTORS, MultiverseConfig, profile_config
from fin_ia_models.multiverse.context import embedding_width
from fin_ia_models.multiverse.evaluate import evaluate_window, fit_baselines
from fin_ia_models.multiverse.stage import symbol_contexts, training_arrays
from fin_ia_models.multiverse.train import train_multiverse
from fin_ia_models.tokenizer.checkpoint import load_tokenizer
from fin_ia_models.tokenizer.config import profile_config as tokenizer_profile
from fin_ia_models.tokenizer.encode import encode_candles
from fin_ia_models.tokenizer.train import train_tokenizer
from fin_ia_models.training.checkpoint import checkpoint_bytes, sha256_bytes
from fin_ia_models.world_model.config import jepa_profile
from fin_ia_models.world_model.stage import embed_tokens, exo_by_symbol, jepa_config_for
from fin_ia_models.world_model.train import load_jepa, train_jepa

log = logging.getLogger("fin_ia.multiverse")
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance"
TABLE_KEYS = ("crps_ret", "crps_ret_fair", "crps_rv", "crps_rv_fair", "energy", "coverage_ret_50", "coverage_ret_90",
              "coverage_rv_50", "coverage_rv_90", "pit_ret_ks_pvalue", "pit_rv_ks_pvalue")


def _cut(frame: pd.DataFrame, end_ms: int, column: str) -> pd.DataFrame:
    part = frame[frame[column] < end_ms].reset_index(drop=True)
    part.attrs = dict(frame.attrs)
    return part


def upstream_models(args: argparse.Namespace, candles: dict[str, pd.DataFrame], split: TimeSplit):
    """(tokenizer, jepa): loaded from files, or trained on everything before the end of the validation window."""
    _, train_end = split.range_ms("val")
    if args.tokenizer is not None:
        tokenizer = load_tokenizer(args.tokenizer)
    else:
        frames = [_cut(f, train_end, "timestamp") for f in candles.values()]
        tokenizer = train_tokenizer(frames, tokenizer_profile(args.profile, "fsq"), args.upstream_seed,
                                    args.output_dir, num_threads=args.threads).model
    if args.jepa is not None:
        return tokenizer, load_jepa(args.jepa)
    tokens = {s: encode_candles(tokenizer, f) for s, f in candles.items()}
    config = jepa_config_for(tokenizer, jepa_profile(args.profile), exo_clock=True, use_latents=True)
    exo = exo_by_symbol(tokens, candles, tokenizer.config.patch_len)
    train_tokens = {s: _cut(f, train_end, "end_timestamp") for s, f in tokens.items()}
    return tokenizer, train_jepa(train_tokens, config, args.upstream_seed, args.output_dir, exo=exo).model


def fingerprint(model, kind: str) -> str:
    """A content version for models that are not in a registry: the SHA-256 of their checkpoint bytes."""
    return "sha256:" + sha256_bytes(checkpoint_bytes(model, kind))[:16]


def overrides(pairs: list[str]) -> dict:
    """``["coupling=independent", "scale_windows=[4,16,64]"]`` → config overrides (values parsed as JSON when they
    parse, else kept as strings; lists become tuples)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set needs key=value, got {pair!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    return out


@dataclasses.dataclass
class Upstream:
    """What a real-candle report builds before its own stage: candles, tokenizer + Fin-JEPA, their outputs, versions
    and the multiverse profile config for them (with ``--set`` overrides)."""

    candles: dict[str, pd.DataFrame]
    tokenizer: object
    jepa: object
    tokens: dict[str, pd.DataFrame]
    embeddings: dict[str, pd.DataFrame]
    versions: dict[str, str]
    config: MultiverseConfig


def upstream_chain(args: argparse.Namespace, split: TimeSplit) -> Upstream:
    """The shared start of this report and ``agents.report``: ``--data-dir``/``--symbols``/``--timeframe`` candles,
    ``upstream_models``, tokens, embeddings and ``profile_config(--profile, --set)``."""
    candles = {s: read_candle_file(args.data_dir / f"{s}_{args.timeframe}.csv") for s in args.symbols}
    candles = {f.attrs["symbol"]: f for f in candles.values()}
    tokenizer, jepa = upstream_models(args, candles, split)
    tokens = {s: encode_candles(tokenizer, f) for s, f in candles.items()}
    embeddings = {s: embed_tokens(jepa, tokens[s], candles[s], tokenizer.config.patch_len)[0] for s in candles}
    versions = {"tokenizer_version": fingerprint(tokenizer, "tokenizer"), "jepa_version": fingerprint(jepa, "jepa")}
    config = profile_config(args.profile, tokenizer=tokenizer.config,
                            emb_dim=embedding_width(next(iter(embeddings.values()))), **versions, **overrides(args.set))
    return Upstream(candles, tokenizer, jepa, tokens, embeddings, versions, config)


def run_report(args: argparse.Namespace) -> dict:
    split = TimeSplit()
    started = time.perf_counter()
    up = upstream_chain(args, split)
    candles, tokenizer, tokens, embeddings, versions, base = (up.candles, up.tokenizer, up.tokens, up.embeddings,
                                                              up.versions, up.config)
    contexts = symbol_contexts(tokens, embeddings, candles, base)
    train_start, train_end = split.range_ms("train")
    window = split.range_ms(args.window)
    baselines = {s: fit_baselines(candles[s], train_start, train_end) for s in candles}
    runs = []
    for predictor in args.predictors:
        config = dataclasses.replace(base, predictor=predictor)
        features, targets = training_arrays(contexts, candles, config, train_start, train_end)
        for seed in args.seeds:
            t0 = time.perf_counter()
            result = train_multiverse(features, targets, config, seed, tokenizer)
            t1 = time.perf_counter()
            evaluation = evaluate_window(result.model, contexts, candles, baselines, *window, seed)
            scores = {f"{sym}|{model}|{h}": v for (sym, model, h), v in evaluation.scores.items()}
            runs.append({"predictor": predictor, "seed": seed, "train_contexts": len(features), "scores": scores,
                         "first_loss": result.history[0]["loss"], "final_loss": result.history[-1]["loss"],
                         "train_s": t1 - t0, "eval_s": time.perf_counter() - t1})
            log.info("%s seed %d: trained %.0f s, scored %.0f s", predictor, seed, t1 - t0, time.perf_counter() - t1)
    return {"window": args.window, "window_ms": list(window), "symbols": sorted(candles), "versions": versions,
            "config": base.to_dict(), "runs": runs, "wall_time_s": time.perf_counter() - started,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}


def table(report: dict) -> str:
    """Markdown: per symbol (and pooled) and horizon, every model's mean ± std over seeds of ``TABLE_KEYS``."""
    cells: dict[tuple[str, int, str], dict[str, list[float]]] = {}
    seen: set[tuple[str, int]] = set()
    for run in report["runs"]:
        for key, scores in run["scores"].items():
            symbol, model, h = key.split("|")
            if model != "multiverse" and (key, run["seed"]) in seen:
                continue  # a baseline is the same for every predictor: count it once per seed
            seen.add((key, run["seed"]))
            name = f"multiverse {run['predictor']}" if model == "multiverse" else model
            slot = cells.setdefault((symbol, int(h), name), {})
            for k in TABLE_KEYS + ("n_scored",):
                slot.setdefault(k, []).append(scores[k])
    header = "| symbol | h | model | " + " | ".join(TABLE_KEYS) + " | n |"
    lines = [header, "|" + "---|" * (len(TABLE_KEYS) + 4)]
    for (symbol, h, name), slot in sorted(cells.items(), key=lambda kv: (kv[0][0] != "all", kv[0])):
        values = []
        for k in TABLE_KEYS:
            v = np.array(slot[k])
            digits = 5 if k.startswith(("crps", "energy")) else 3
            values.append(f"{v.mean():.{digits}f}" + (f" ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else ""))
        lines.append(f"| {symbol} | {h}c | {name} | " + " | ".join(values) + f" | {int(slot['n_scored'][0])} |")
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--symbols", nargs="+", default=["BTCUSDT", "ETHUSDT"])
    parser.add_argument("--timeframe", default="1h")
    parser.add_argument("--profile", default="cpu", choices=PROFILES)
    parser.add_argument("--tokenizer", type=Path, default=None, help="load this tokenizer checkpoint, don't train")
    parser.add_argument("--jepa", type=Path, default=None, help="load this Fin-JEPA checkpoint, don't train")
    parser.add_argument("--upstream-seed", type=int, default=0, help="seed of the tokenizer/JEPA trained here")
    parser.add_argument("--predictors", nargs="+", default=list(PREDICTORS), choices=PREDICTORS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--window", required=True, choices=("val", "test"),
                        help="val chooses; test is scored once per pre-declared configuration")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="MultiverseConfig overrides of the profile, e.g. coupling=independent")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    parser.add_argument("--output-dir", type=Path, default=Path(".fin_ia/multiverse_report"))  # git-ignored
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    report = run_report(args)
    print(table(report))
    out = args.output_dir / f"multiverse_report_{args.window}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"wall time {report['wall_time_s']:.0f} s; wrote {out}")
    return report


if __name__ == "__main__":
    main()
