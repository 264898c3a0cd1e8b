"""Strate I speed on CPU: batched soft-DTW (anti-diagonal vectorized) against the plain O(n·m) Python loop, and
tokenizer encode throughput (features + patches + encoder + quantizer) in patches per second.

Soft-DTW: batch 256 of length-16 sequences with 5 channels (the tokenizer's patch shape), gamma 0.1, one thread.
The loop reference has no backward pass, so it is timed forward only; the ratio compares forward to forward.
Encode: all of BTCUSDT_1h at stride 1 (every hour a patch), demo-profile model (weights at init: speed does not
depend on training).
"""

from __future__ import annotations

from pathlib import Path

import torch

from benchmarks.timing import best_of
from fin_ia_models.tokenizer.config import profile_config
from fin_ia_models.tokenizer.encode import encode_candles
from fin_ia_models.tokenizer.model import TokenizerModel
from fin_ia_models.tokenizer.soft_dtw import soft_dtw, soft_dtw_ref
from fin_ia_models.utils.seeding import seed_everything

CSV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance" / "BTCUSDT_1h.csv"



def run() -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seed_everything(0)
        x = torch.randn(256, 16, 5, dtype=torch.float32, requires_grad=True)
        y = torch.randn(256, 16, 5, dtype=torch.float32)

        def fwd_bwd():
            soft_dtw(x, y, 0.1).sum().backward()

        fwd = best_of(lambda: soft_dtw(x.detach(), y, 0.1))
        both = best_of(fwd_bwd)
        loop = best_of(lambda: [soft_dtw_ref(x[i].detach().double(), y[i].double(), 0.1) for i in range(256)], repeat=1)
        rows = [
            {"name": "soft-DTW forward, batch 256 × 16 (vectorized)", "value": fwd * 1e3, "unit": "ms", "note": "1 thread"},
            {"name": "soft-DTW forward + backward, batch 256 × 16", "value": both * 1e3, "unit": "ms", "note": "1 thread"},
            {"name": "soft-DTW forward, plain Python loop reference", "value": loop * 1e3, "unit": "ms", "note": "256 pairs, O(n·m) each"},
            {"name": "soft-DTW forward speed-up vs loop", "value": loop / fwd, "unit": "×", "note": ""},
        ]
        if CSV.exists():
            from fin_ia_models.data.sources.files import read_candle_file

            frame = read_candle_file(CSV, "BTC/USDT")
            for quantizer in ("fsq", "vq"):
                model = TokenizerModel(profile_config("demo", quantizer)).eval()
                with torch.no_grad():
                    seconds = best_of(lambda: encode_candles(model, frame, stride=1), repeat=2)
                    n = len(encode_candles(model, frame, stride=1))
                rows.append({"name": f"tokenizer encode throughput ({quantizer}, demo model)", "value": n / seconds,
                             "unit": "patches/s", "note": f"{n} patches of BTCUSDT_1h at stride 1, 1 thread"})
        return rows
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    for row in run():
        print(row)
