"""Load + validate all of BTCUSDT_1h (64k candles) from the files source, on one core.

Side by side: a bare ``pandas.read_csv`` of the same file (the floor: parsing alone), our full load (parse, type
checks, every validation rule, gap report), and validation alone on the in-memory frame. Goal: full load ≤ 0.5 s.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from benchmarks.timing import best_of
from fin_ia_models.data.sources.files import read_candle_file
from fin_ia_models.data.validation import validate_candles

CSV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance" / "BTCUSDT_1h.csv"



def run() -> list[dict]:
    if not CSV.exists():
        return [{"name": "files: load+validate BTCUSDT_1h", "value": float("nan"), "unit": "s", "note": f"skipped: {CSV} absent"}]
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the goal says
    try:
        frame = read_candle_file(CSV)
        bare = best_of(lambda: pd.read_csv(CSV))
        full = best_of(lambda: read_candle_file(CSV))
        validate_only = best_of(lambda: validate_candles(frame, "1h"))
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    n = len(frame)
    return [
        {"name": "files: pandas.read_csv only (floor)", "value": bare, "unit": "s", "note": f"{n} candles"},
        {"name": "files: load + validate BTCUSDT_1h", "value": full, "unit": "s", "note": f"goal ≤ 0.5 s; {n / full:,.0f} candles/s"},
        {"name": "files: validate only (in memory)", "value": validate_only, "unit": "s", "note": "every rule + gap report"},
        {"name": "files: full load / bare read_csv", "value": full / bare, "unit": "×", "note": "overhead of validation"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
