"""``python -m fin_ia_models.tokenizer.report``: train the tokenizer on real Binance candles up to the end of the
validation window (2023-12-31 by default) and measure it on the test year (2024), printing and dumping JSON.

Two evaluations, kept apart on purpose:
- ``test_tokens``: the real token sequence — non-overlapping ``patch_len`` patches ending in the test range. With
  1h candles and 16-candle patches that is only ~1.1k patches for two symbols, so even a perfectly uniform tokenizer
  would touch only 1 − (1 − 1/1024)^1100 ≈ 66 % of 1024 codes (``uniform_expected_utilization``).
- ``test_dense``: patches ending at EVERY test candle (stride 1, ~17.5k patches), each still built from its own past
  candles only — the code-usage of the tokenizer as a function, not of one sequence.

Both views are also scored on ``--unseen-symbols`` (SOL/USDT and BNB/USDT by default: never seen in training), and
every utilization and perplexity is stated as a fraction of its uniform ceiling (the goal: ≥ 90 % of it).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fin_ia_models.config import PROFILES, TimeSplit
from fin_ia_models.data.sources.files import read_candle_file
from fin_ia_models.tokenizer.config import QUANTIZERS, profile_config
from fin_ia_models.tokenizer.features import make_patches
from fin_ia_models.tokenizer.metrics import evaluate_patches
from fin_ia_models.tokenizer.train import train_tokenizer

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--symbols", nargs="+", default=["BTCUSDT", "ETHUSDT"])
    parser.add_argument("--timeframe", default="1h")
    parser.add_argument("--quantizers", nargs="+", default=list(QUANTIZERS), choices=QUANTIZERS)
    parser.add_argument("--profile", default="cpu", choices=PROFILES)
    parser.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    parser.add_argument("--train-stride", type=int, default=None, help="override the profile's train_stride")
    parser.add_argument("--unseen-symbols", nargs="*", default=["SOLUSDT", "BNBUSDT"],
                        help="scored on the test year too, never trained on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    parser.add_argument("--output-dir", type=Path, default=Path(".fin_ia/tokenizer_report"))  # git-ignored
    parser.add_argument("--json", type=Path, default=None, help="write the results here (default: output dir)")
    return parser.parse_args(argv)


def _slice(frame: pd.DataFrame, start_ms: int, end_ms: int) -> pd.DataFrame:
    part = frame[(frame["timestamp"] >= start_ms) & (frame["timestamp"] < end_ms)].reset_index(drop=True)
    part.attrs = dict(frame.attrs)
    return part


def _test_patches(frames: list[pd.DataFrame], config, stride: int, start_ms: int, end_ms: int) -> np.ndarray:
    """Patches ending in [start_ms, end_ms), built from the full frames (so warm-up history is the real past)."""
    parts = []
    for frame in frames:
        patches = make_patches(frame, config.patch_len, stride, config.volume_window, config.return_scale)
        keep = (patches.end_timestamp >= start_ms) & (patches.end_timestamp < end_ms)
        parts.append(patches.values[keep])
    return np.concatenate(parts)


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    split = TimeSplit()
    train_end_ms = split.range_ms("val")[1]  # everything up to the end of the validation window is training data
    test_start_ms, test_end_ms = split.range_ms("test")
    frames = [read_candle_file(args.data_dir / f"{s}_{args.timeframe}.csv") for s in args.symbols]
    unseen_frames = [read_candle_file(args.data_dir / f"{s}_{args.timeframe}.csv") for s in args.unseen_symbols]
    train_frames = [_slice(f, 0, train_end_ms) for f in frames]
    # metrics during training use the test range too (non-overlapping); the report recomputes both views below
    test_frames = [_slice(f, test_start_ms, test_end_ms) for f in frames]
    results: dict = {"symbols": args.symbols, "timeframe": args.timeframe, "profile": args.profile,
                     "seed": args.seed, "threads": args.threads, "train_end_ms": train_end_ms,
                     "test_range_ms": [test_start_ms, test_end_ms], "quantizers": {}}
    for quantizer in args.quantizers:
        overrides = {k: v for k, v in (("epochs", args.epochs), ("train_stride", args.train_stride)) if v is not None}
        config = profile_config(args.profile, quantizer, **overrides)
        started = time.perf_counter()
        result = train_tokenizer(train_frames, config, args.seed, args.output_dir, eval_candles=test_frames,
                                 num_threads=args.threads)
        wall = time.perf_counter() - started
        tokens = evaluate_patches(result.model, _test_patches(frames, config, config.patch_len, test_start_ms,
                                                              test_end_ms))
        dense = evaluate_patches(result.model, _test_patches(frames, config, 1, test_start_ms, test_end_ms))
        unseen = {}
        for symbol, frame in zip(args.unseen_symbols, unseen_frames):
            for view, stride in (("tokens", config.patch_len), ("dense", 1)):
                unseen[f"{symbol}_{view}"] = evaluate_patches(
                    result.model, _test_patches([frame], config, stride, test_start_ms, test_end_ms))
        results["quantizers"][quantizer] = {
            "config": config.to_dict(), "wall_time_s": wall, "device": result.device,
            "n_train_patches": result.info["n_train_patches"], "checkpoint": str(result.checkpoint_path),
            "history": result.history, "test_tokens": tokens, "test_dense": dense, "unseen": unseen,
        }
        views = [("test_tokens (non-overlapping)", tokens), ("test_dense (stride 1)", dense),
                 *((f"unseen {k}", m) for k, m in unseen.items())]
        for name, m in views:
            print(f"{quantizer} {name}: {m['n_patches']} patches, utilization {m['utilization']:.3f} "
                  f"(ideal uniform: {m['uniform_expected_utilization']:.3f}), perplexity {m['perplexity']:.1f} "
                  f"(ideal uniform: {m['uniform_reference_perplexity']:.1f}), recon MAE {m['recon_mae']:.4f} "
                  f"vs patch-mean baseline {m['recon_mae_patch_mean_baseline']:.4f} "
                  f"(ret_close {m['recon_mae_ret_close']:.4f} %); of the uniform ceiling: utilization "
                  f"{m['utilization'] / m['uniform_expected_utilization']:.1%}, perplexity "
                  f"{m['perplexity'] / m['uniform_reference_perplexity']:.1%}")
        print(f"{quantizer}: trained in {wall:.0f} s on {result.device}; revived codes per epoch "
              f"{[int(r['revived']) for r in result.history]}; loss per epoch "
              f"{[round(r['loss'], 4) for r in result.history]}")
    out = args.json or args.output_dir / "tokenizer_report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
