"""``python -m fin_ia_models.world_model.report``: does Strate II's embedding carry the market's state? (issues 4, 12)

Trains Fin-JEPA on the token sequences of Binance BTC/USDT + ETH/USDT 1h and reads its frozen, causal per-token
embeddings out with linear probes — the standard read-out of self-supervised representations (I-JEPA, Assran et
al. 2023). ``--window`` chooses the protocol (``probes.probe_windows``):

- ``val`` (decisions): JEPA trained on tokens ending in the training window (≤ 2023-09-30), probes fit there,
  scored on the validation window (2023-10-01 … 2023-12-31);
- ``test`` (reported once per pre-declared configuration): JEPA trained on tokens ending up to 2023-12-31, probes
  fit there, scored on 2024.

Probes are fit on the TRAINING symbols only (BTC+ETH) and scored per symbol on those and on unseen symbols (SOL,
BNB): next-24 h log realized vol (ridge, R²), next-24 h return sign (logistic, accuracy, ROC AUC ± standard error),
and the sanity probe — the current 24 h realized vol (R² should be ≥ 0.9). Everything is compared on the same rows
with the raw unit-free features, the single feature "log realized vol of the last 24 h", predicting the training
mean, and an UNTRAINED control encoder (the same architecture at its seeded initialisation): what training adds.
Each ``--seeds`` value trains one JEPA; tables give mean ± std over seeds.

Without ``--tokenizer`` an FSQ tokenizer (``cpu`` profile, seed 0) is trained first on the training symbols'
candles of the training window only (≤ 2023-09-30), so the validation window is unseen by every model; it is saved
as ``tokenizer_fsq.safetensors`` in the output folder and reused by the next run of the same output folder.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fin_ia_models.config import PROFILES, TimeSplit
from fin_ia_models.data.sources.files import read_candle_file
from fin_ia_models.tokenizer.checkpoint import load_tokenizer
from fin_ia_models.tokenizer.config import profile_config
from fin_ia_models.tokenizer.encode import encode_candles
from fin_ia_models.tokenizer.model import TokenizerModel
from fin_ia_models.tokenizer.train import train_tokenizer
from fin_ia_models.utils.seeding import seed_everything
from fin_ia_models.world_model.config import JEPAConfig, jepa_profile
from fin_ia_models.world_model.exo_signals import exo_from_candles
from fin_ia_models.world_model.jepa import FinJEPA
from fin_ia_models.world_model.probes import gate_metrics, probe_scores, probe_windows
from fin_ia_models.world_model.sequences import exo_columns
from fin_ia_models.world_model.train import train_jepa

log = logging.getLogger("fin_ia.world_model")
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance"  # repo parent holds shared/
PROBE_KEYS = ("rv_r2", "sign_accuracy", "sign_auc", "sign_auc_se", "rv_now_r2", "n_test_rv_next", "n_test_sign_next")
TRAIN_SYMBOLS = ("BTCUSDT", "ETHUSDT")
SCORE_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")


def _window(frame: pd.DataFrame, start_ms: int, end_ms: int, column: str) -> pd.DataFrame:
    part = frame[(frame[column] >= start_ms) & (frame[column] < end_ms)].reset_index(drop=True)
    part.attrs = dict(frame.attrs)
    return part


def jepa_report(candles: dict[str, pd.DataFrame], tokenizer: TokenizerModel, config: JEPAConfig, split: TimeSplit,
                seed: int, output_dir: str | Path, window: str = "test",
                train_symbols: list[str] | None = None) -> dict:
    """Encode ``candles`` (symbol → candle frame) with ``tokenizer``; train Fin-JEPA (``config``) on the tokens of
    ``train_symbols`` (default: all) ending in ``window``'s fit range; return the probe scores of the trained
    encoder (``jepa_*``), the untrained control (``untrained_*``) and the baselines, training stats, wall times."""
    if config.vocab_size != tokenizer.codebook_size:
        raise ValueError(f"config.vocab_size {config.vocab_size} != tokenizer codebook {tokenizer.codebook_size}")
    if config.n_latent not in (0, tokenizer.config.latent_dim):
        raise ValueError(f"config.n_latent must be 0 or the tokenizer latent_dim {tokenizer.config.latent_dim}, "
                         f"got {config.n_latent}")
    train_symbols = sorted(candles) if train_symbols is None else list(train_symbols)
    missing = [s for s in train_symbols if s not in candles]
    if missing:
        raise ValueError(f"train symbols {missing} have no candles; have {sorted(candles)}")
    t0 = time.perf_counter()
    patch_len = tokenizer.config.patch_len
    tokens = {}
    for symbol, frame in sorted(candles.items()):
        seq = encode_candles(tokenizer, frame)  # non-overlapping patches over the whole series
        tokens[symbol] = seq if config.n_latent else seq[["end_timestamp", "token"]]
    exo = None
    if exo_columns(config):  # causal per-token exo z-scores and patch scale (exo_signals.py)
        exo = {s: exo_from_candles(candles[s], f["end_timestamp"].to_numpy(np.int64), patch_len,
                                   candles[s].attrs["timeframe"]) for s, f in tokens.items()}
    (fit_start, fit_end), _ = probe_windows(split, window)
    train_tokens = {s: _window(tokens[s], fit_start, fit_end, "end_timestamp") for s in train_symbols}
    t1 = time.perf_counter()
    result = train_jepa(train_tokens, config, seed, output_dir, exo=exo)
    t2 = time.perf_counter()
    seed_everything(seed)
    control = FinJEPA(config).eval()  # what the probes read from the architecture alone, before any training
    scores = probe_scores({"jepa": result.model, "untrained": control}, tokens, exo, candles, split, window,
                          fit_symbols=train_symbols)
    if window == "val":
        scores.update(gate_metrics(scores))
    t3 = time.perf_counter()
    history = result.history
    return {
        "probes": scores,
        "window": window,
        "jepa_config": dataclasses.asdict(config),
        "split": dataclasses.asdict(split),
        "seed": seed,
        "train_symbols": train_symbols,
        "tokens": {s: {"total": len(f), "train": len(train_tokens[s]) if s in train_tokens else 0}
                   for s, f in tokens.items()},
        "training": {"device": result.device, "tokens_seen": result.info["tokens_seen"],
                     "tokens_per_s": result.metrics["tokens_per_s"],
                     "first_loss": history[0]["loss"] if history else float("nan"),
                     "final_loss": history[-1]["loss"] if history else float("nan"),
                     "collapse": {k.removeprefix("final_collapse_"): v for k, v in result.metrics.items()
                                  if k.startswith("final_collapse_")},
                     "checkpoint": str(result.checkpoint_path)},
        "wall_s": {"encode": t1 - t0, "train_jepa": t2 - t1, "probes": t3 - t2},
    }


def _override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--window", choices=("val", "test"), default="val",
                        help="val: decide (fit ≤ 2023-09-30, score 2023-Q4); test: report 2024 (once per config)")
    parser.add_argument("--train-symbols", nargs="+", default=list(TRAIN_SYMBOLS))
    parser.add_argument("--score-symbols", nargs="+", default=list(SCORE_SYMBOLS),
                        help="scored per symbol; those not in --train-symbols are unseen by every model")
    parser.add_argument("--timeframe", default="1h")
    parser.add_argument("--profile", default="cpu", choices=PROFILES)
    parser.add_argument("--tokenizer", type=Path, default=None, help="load this tokenizer checkpoint, don't train")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--latents", action=argparse.BooleanOptionalAction, default=False,
                        help="feed Strate I's continuous latents next to the tokens (off: the pipeline's default)")
    parser.add_argument("--set", type=_override, action="append", default=[], metavar="KEY=VALUE",
                        help="override a JEPAConfig field, e.g. --set n_layers=2 --set scale_inputs=False")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    parser.add_argument("--output-dir", type=Path, default=None, help="default .fin_ia/jepa_report/<window>")
    return parser.parse_args(argv)


def _tokenizer(args: argparse.Namespace, frames: dict[str, pd.DataFrame], split: TimeSplit) -> tuple[TokenizerModel,
                                                                                                       str]:
    path = args.tokenizer or args.output_dir / "tokenizer_fsq.safetensors"
    if path.is_file():
        return load_tokenizer(path), str(path)
    if args.tokenizer is not None:
        raise FileNotFoundError(f"--tokenizer {args.tokenizer} does not exist")
    start, end = split.range_ms("train")
    train = [_window(frames[s], start, end, "timestamp") for s in args.train_symbols]
    result = train_tokenizer(train, profile_config(args.profile, "fsq"), 0, args.output_dir,
                             num_threads=args.threads)
    return result.model, str(result.checkpoint_path)


def _ms(values: list[float]) -> str:
    a = np.asarray(values, float)
    return f"{a.mean():+.3f} ± {a.std():.3f}" if len(a) > 1 else f"{a.mean():+.3f}"


def summary_table(runs: list[dict], symbols: list[str]) -> str:
    """Markdown: one row per symbol (and all pooled), mean ± std over the runs (seeds)."""
    def get(run: dict, group: str, key: str) -> float:
        return run["probes"][key if group == "all" else f"{group}:{key}"]

    head = ("| symbol | JEPA R² | untrained R² | raw R² | single-feature R² | train-mean R² "
            "| JEPA − best baseline | goal | JEPA sign AUC ± se | raw sign AUC "
            "| sanity: JEPA R² of current RV | n |")
    lines = [head, "|" + "---|" * 12]
    for group in [*symbols, "all"]:
        r = lambda key: [get(run, group, key) for run in runs]  # noqa: E731
        best = np.maximum(r("raw_rv_r2"), r("single_rv_r2"))
        jepa = np.asarray(r("jepa_rv_r2"))
        margin = jepa.mean() - np.mean(best)  # goal: the seed mean of JEPA ≥ that of the better baseline
        auc, se = np.mean(r("jepa_sign_auc")), np.mean(r("jepa_sign_auc_se"))
        lines.append(
            f"| {group} | {_ms(r('jepa_rv_r2'))} | {_ms(r('untrained_rv_r2'))} | {_ms(r('raw_rv_r2'))} | "
            f"{_ms(r('single_rv_r2'))} | {_ms(r('mean_rv_r2'))} | {margin:+.3f} | "
            f"{'met' if margin >= 0 else 'not met'} | {auc:.3f} ± {se:.3f} | {np.mean(r('raw_sign_auc')):.3f} | "
            f"{_ms(r('jepa_rv_now_r2'))} | {get(runs[0], group, 'jepa_n_test_rv_next'):.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    args.output_dir = args.output_dir or Path(".fin_ia/jepa_report") / args.window  # git-ignored
    args.output_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    split = TimeSplit()
    symbols = list(dict.fromkeys([*args.train_symbols, *args.score_symbols]))
    frames = {s: read_candle_file(args.data_dir / f"{s}_{args.timeframe}.csv") for s in symbols}
    tokenizer, tok_source = _tokenizer(args, frames, split)
    overrides = {"vocab_size": tokenizer.codebook_size, "n_latent": tokenizer.config.latent_dim if args.latents else 0,
                 **dict(args.set)}
    config = jepa_profile(args.profile, **overrides)
    runs = []
    for seed in args.seeds:
        # one seed: jepa_encoder.safetensors lands in the output folder itself (where Strate III's command reads it)
        seed_dir = args.output_dir if len(args.seeds) == 1 else args.output_dir / f"seed{seed}"
        run = jepa_report(frames, tokenizer, config, split, seed, seed_dir, args.window, args.train_symbols)
        runs.append(run)
        p = run["probes"]
        print(f"seed {seed}: JEPA R² {p['jepa_rv_r2']:+.4f}, untrained {p['untrained_rv_r2']:+.4f}, raw "
              f"{p['raw_rv_r2']:+.4f}, single {p['single_rv_r2']:+.4f}, sanity {p['jepa_rv_now_r2']:.3f}; loss "
              f"{run['training']['first_loss']:.3f} → {run['training']['final_loss']:.3f} "
              f"({run['wall_s']['train_jepa']:.0f} s)", flush=True)
    table = summary_table(runs, args.score_symbols)
    window_text = "validation 2023-10-01 … 2023-12-31" if args.window == "val" else "test 2024"
    title = (f"Fin-JEPA probes, {window_text}; {args.profile} profile, overrides {dict(args.set) or 'none'}, latents "
             f"{'on' if args.latents else 'off'}, seeds {args.seeds}, trained on {'+'.join(args.train_symbols)}")
    print(title)
    print(table)
    if args.window == "val":
        gate = [run["probes"]["val_jepa_minus_single_rv_r2"] for run in runs]
        print(f"gate metric val_jepa_minus_single_rv_r2: {_ms(gate)}")
    report = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "tokenizer": {"source": tok_source, "config": tokenizer.config.to_dict()},
              "runs": runs, "table_markdown": table, "title": title,
              "versions": {"python": platform.python_version(), "torch": torch.__version__,
                           "numpy": np.__version__},
              "wall_time_s": time.perf_counter() - started}
    (args.output_dir / "results.md").write_text(f"{title}\n\n{table}\n")
    out = args.output_dir / "jepa_report.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(out)  # atomic: a reader never sees half a report
    print(f"wrote {out} and {args.output_dir / 'results.md'} ({report['wall_time_s']:.0f} s)")
    return report


if __name__ == "__main__":
    main()
