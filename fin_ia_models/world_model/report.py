"""``python -m fin_ia_models.world_model.report``: Strate II's quality goal on real candles (issue 4).

Trains Fin-JEPA on the token sequences of Binance BTC/USDT + ETH/USDT 1h up to the end of the validation window
(2023-12-31, ``TimeSplit``) and reads its frozen, causal per-token embeddings out with linear probes — the standard
read-out of self-supervised representations (I-JEPA, Assran et al. 2023) — on the test year 2024:

- next-24 h log realized volatility (ridge, R²) and next-24 h return sign (logistic, accuracy and ROC AUC),
- fit on tokens ending in [train_start, val_end], scored on tokens ending in the test window (after the embargo),
- JEPA embedding vs raw features (last 24 hourly log returns + log volumes) of the SAME tokens.

The probes are computed exactly as the ``jepa_encoder`` asset's ``probe_report`` does (``fin_ia_models`` may not
import the pipeline, so the few lines are repeated in ``probe_scores``). The tokenizer is trained on candles before
the test year (or loaded with ``--tokenizer``, e.g. a ``tokenizer_<quantizer>.pt`` from
``python -m fin_ia_models.tokenizer.report``); tokens are non-overlapping patches, exo signals are causal.
"""

from __future__ import annotations

import argparse
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
from fin_ia_models.tokenizer.config import QUANTIZERS, profile_config
from fin_ia_models.tokenizer.encode import encode_candles
from fin_ia_models.tokenizer.model import TokenizerModel
from fin_ia_models.tokenizer.train import train_tokenizer
from fin_ia_models.utils.seeding import seed_everything
from fin_ia_models.world_model.config import ExoClockConfig, JEPAConfig, jepa_profile
from fin_ia_models.world_model.embed import embed_sequence
from fin_ia_models.world_model.exo_signals import exo_from_candles
from fin_ia_models.world_model.jepa import FinJEPA
from fin_ia_models.world_model.probes import evaluate_probes, probe_targets, raw_features
from fin_ia_models.world_model.train import train_jepa

log = logging.getLogger("fin_ia.world_model")
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance"  # repo parent holds shared/
PROBE_KEYS = ("rv_r2", "sign_accuracy", "sign_auc", "n_test_rv_next", "n_test_sign_next")


def _window(frame: pd.DataFrame, start_ms: int, end_ms: int, column: str) -> pd.DataFrame:
    part = frame[(frame[column] >= start_ms) & (frame[column] < end_ms)].reset_index(drop=True)
    part.attrs = dict(frame.attrs)
    return part


def probe_scores(model: FinJEPA, tokens: dict[str, pd.DataFrame], exo: dict[str, pd.DataFrame] | None,
                 candles: dict[str, pd.DataFrame], split: TimeSplit) -> dict[str, float]:
    """``jepa_*`` and ``raw_*`` probe scores (see ``PROBE_KEYS``): fit on tokens ending in [train_start, val_end],
    scored on tokens ending in the test window; embeddings run causally over each whole series."""
    train_start, _ = split.range_ms("train")
    _, train_end = split.range_ms("val")
    test_start, test_end = split.range_ms("test")
    parts: dict[str, tuple[list, list, list, list]] = {"jepa": ([], [], [], []), "raw": ([], [], [], [])}
    for symbol, frame in tokens.items():
        emb = embed_sequence(model, frame, None if exo is None else exo[symbol])
        series, ts = candles[symbol], emb["end_timestamp"].to_numpy()
        targets = probe_targets(series, ts, series.attrs["timeframe"])
        features = {"jepa": emb.filter(like="emb_").to_numpy(np.float64), "raw": raw_features(series, ts)}
        for name, x in features.items():
            for i, (lo, hi) in enumerate(((train_start, train_end), (test_start, test_end))):
                rows = (ts >= lo) & (ts < hi)
                parts[name][2 * i].append(x[rows])
                parts[name][2 * i + 1].append(targets[rows])
    scores: dict[str, float] = {}
    for name, (xtr, ytr, xte, yte) in parts.items():
        result = evaluate_probes(np.concatenate(xtr), pd.concat(ytr), np.concatenate(xte), pd.concat(yte))
        scores.update({f"{name}_{k}": v for k, v in result.items()})
        scores[f"{name}_n_train_rows"] = float(sum(len(x) for x in xtr))
    return scores


def jepa_report(candles: dict[str, pd.DataFrame], tokenizer: TokenizerModel, config: JEPAConfig, split: TimeSplit,
                seed: int, output_dir: str | Path) -> dict:
    """Encode ``candles`` (symbol → candle frame) with ``tokenizer``, train Fin-JEPA (``config``) on tokens ending
    before the end of the validation window, and return probe scores, training stats and wall times."""
    if config.vocab_size != tokenizer.codebook_size:
        raise ValueError(f"config.vocab_size {config.vocab_size} != tokenizer codebook {tokenizer.codebook_size}")
    if config.n_latent not in (0, tokenizer.config.latent_dim):
        raise ValueError(f"config.n_latent must be 0 or the tokenizer latent_dim {tokenizer.config.latent_dim}, "
                         f"got {config.n_latent}")
    t0 = time.perf_counter()
    patch_len = tokenizer.config.patch_len
    tokens = {}
    for symbol, frame in sorted(candles.items()):
        seq = encode_candles(tokenizer, frame)  # non-overlapping patches over the whole series
        if config.n_latent == 0:
            seq = seq[["end_timestamp", "token"]]
        tokens[symbol] = seq
    exo = None
    if config.mixer.exo.enabled:  # causal trailing z-scores of each token's patch (exo_signals.py)
        exo = {s: exo_from_candles(candles[s], f["end_timestamp"].to_numpy(np.int64), patch_len,
                                   candles[s].attrs["timeframe"]) for s, f in tokens.items()}
    train_start, _ = split.range_ms("train")
    _, train_end = split.range_ms("val")
    train_tokens = {s: _window(f, train_start, train_end, "end_timestamp") for s, f in tokens.items()}
    t1 = time.perf_counter()
    result = train_jepa(train_tokens, config, seed, output_dir, exo=exo)
    t2 = time.perf_counter()
    scores = probe_scores(result.model, tokens, exo, candles, split)
    t3 = time.perf_counter()
    history = result.history
    return {
        "probes": scores,
        "jepa_config": dataclasses.asdict(config),
        "split": dataclasses.asdict(split),
        "seed": seed,
        "tokens": {s: {"total": len(f), "train": len(train_tokens[s])} for s, f in tokens.items()},
        "training": {"device": result.device, "tokens_seen": result.info["tokens_seen"],
                     "tokens_per_s": result.metrics["tokens_per_s"],
                     "first_loss": history[0]["loss"] if history else float("nan"),
                     "final_loss": history[-1]["loss"] if history else float("nan"),
                     "collapse": {k.removeprefix("final_collapse_"): v for k, v in result.metrics.items()
                                  if k.startswith("final_collapse_")},
                     "checkpoint": str(result.checkpoint_path), "history": history},
        "wall_s": {"encode": t1 - t0, "train_jepa": t2 - t1, "probes": t3 - t2},
    }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--symbols", nargs="+", default=["BTCUSDT", "ETHUSDT"])
    parser.add_argument("--timeframe", default="1h")
    parser.add_argument("--profile", default="cpu", choices=PROFILES)
    parser.add_argument("--quantizer", default=None, choices=QUANTIZERS,
                        help="tokenizer to train (default fsq, the pipeline's); with --tokenizer it must match")
    parser.add_argument("--tokenizer", type=Path, default=None, help="load this tokenizer checkpoint, don't train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=None, help="override the JEPA profile's optimizer steps")
    parser.add_argument("--exo-clock", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--latents", action=argparse.BooleanOptionalAction, default=True,
                        help="feed Strate I's continuous latents next to the tokens (the asset's default)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    parser.add_argument("--output-dir", type=Path, default=Path(".fin_ia/jepa_report"))  # git-ignored
    parser.add_argument("--json", type=Path, default=None, help="write the results here (default: output dir)")
    return parser.parse_args(argv)


def _tokenizer(args: argparse.Namespace, frames: dict[str, pd.DataFrame], split: TimeSplit) -> tuple[TokenizerModel,
                                                                                                       dict]:
    if args.tokenizer is not None:
        model = load_tokenizer(args.tokenizer)
        if args.quantizer is not None and args.quantizer != model.config.quantizer:
            raise ValueError(f"--quantizer {args.quantizer} but {args.tokenizer} holds a {model.config.quantizer}")
        return model, {"source": str(args.tokenizer), "wall_s": 0.0}
    _, train_end = split.range_ms("val")
    val_start, _ = split.range_ms("val")
    train = [_window(f, 0, train_end, "timestamp") for f in frames.values()]
    val = [_window(f, val_start, train_end, "timestamp") for f in frames.values()]  # metrics only, never the test
    started = time.perf_counter()
    config = profile_config(args.profile, args.quantizer or "fsq")
    result = train_tokenizer(train, config, args.seed, args.output_dir, eval_candles=val, num_threads=args.threads)
    return result.model, {"source": str(result.checkpoint_path), "wall_s": time.perf_counter() - started}


def _table(scores: dict[str, float]) -> str:
    rows = [("next-24h realized vol R²", "rv_r2", "{:+.4f}"), ("next-24h sign accuracy", "sign_accuracy", "{:.4f}"),
            ("next-24h sign AUC", "sign_auc", "{:.4f}"), ("n test rows (rv / sign)", None, None),
            ("n train rows", "n_train_rows", "{:.0f}")]
    lines = [f"{'probe on 2024 test tokens':<28}{'JEPA':>14}{'raw':>14}"]
    for label, key, fmt in rows:
        if key is None:
            cells = [f"{scores[f'{n}_n_test_rv_next']:.0f}/{scores[f'{n}_n_test_sign_next']:.0f}"
                     for n in ("jepa", "raw")]
        else:
            cells = [fmt.format(scores[f"{n}_{key}"]) for n in ("jepa", "raw")]
        lines.append(f"{label:<28}{cells[0]:>14}{cells[1]:>14}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    split = TimeSplit()
    frames = {s: read_candle_file(args.data_dir / f"{s}_{args.timeframe}.csv") for s in args.symbols}
    tokenizer, tok_info = _tokenizer(args, frames, split)
    base = jepa_profile(args.profile)
    overrides = {"vocab_size": tokenizer.codebook_size,
                 "n_latent": tokenizer.config.latent_dim if args.latents else 0,
                 "mixer": dataclasses.replace(base.mixer, exo=ExoClockConfig(enabled=args.exo_clock))}
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    config = jepa_profile(args.profile, **overrides)
    report = jepa_report(frames, tokenizer, config, split, args.seed, args.output_dir)
    report.update({
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "tokenizer": {**tok_info, "config": tokenizer.config.to_dict()},
        "candles": {s: {"rows": len(f), "first_ms": int(f["timestamp"].iloc[0]),
                        "last_ms": int(f["timestamp"].iloc[-1])} for s, f in frames.items()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "wall_time_s": time.perf_counter() - started,
    })
    tr = report["training"]
    print(f"Fin-JEPA {args.profile}, exo-clock {'on' if args.exo_clock else 'off'}, latents "
          f"{'on' if args.latents else 'off'}, seed {args.seed}, {config.max_steps} steps, tokenizer "
          f"{tokenizer.config.quantizer} ({tok_info['source']}); "
          f"loss {tr['first_loss']:.4f} → {tr['final_loss']:.4f}")
    print(_table(report["probes"]))
    print(f"wall time {report['wall_time_s']:.0f} s (tokenizer {tok_info['wall_s']:.0f} s, JEPA training "
          f"{report['wall_s']['train_jepa']:.0f} s, {tr['tokens_per_s']:.0f} tokens/s)")
    out = args.json or args.output_dir / "jepa_report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
