"""`make bench`: run every benchmarks/bench_*.py module's ``run()``, print one table, write docs/BENCHMARKS.md.

Benchmarks are measurements, never pass/fail tests. ``python -m benchmarks.run --only files ccxt`` runs a subset
(module names containing those words); the sections of modules not run keep their last measurement (kept with its
date and machine in docs/benchmarks.json) so the document always shows every benchmark.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "BENCHMARKS.md"
STORE = HERE.parent / "docs" / "benchmarks.json"


def _fmt(value: float, unit: str) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if unit == "×":
        return f"{value:.2f}×"
    return f"{value:.4g} {unit}"


def _machine() -> str:
    try:
        import torch

        torch_info = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        torch_info = "no torch"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout.strip()
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{torch_info}, commit {commit or 'unknown'}")


def write_doc(sections: dict) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m benchmarks.run`); numbers are wall-clock, best of several repeats",
        "unless a note says otherwise. They are measurements, not tests: nothing here fails a build.",
        "",
    ]
    for name, section in sorted(sections.items()):
        rows = section["rows"]
        lines += [f"## {name}", "", section["summary"], "", f"_Measured {section['measured']}._", "",
                  "| measurement | value | note |", "|---|---:|---|"]
        lines += [f"| {r['name']} | {_fmt(r['value'], r['unit'])} | {r.get('note', '')} |" for r in rows]
        lines.append("")
    DOC.parent.mkdir(exist_ok=True)
    STORE.write_text(json.dumps(sections, indent=1, default=str))
    DOC.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=None, help="run modules whose name contains one of these")
    args = parser.parse_args()
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if args.only:
        modules = [m for m in modules if any(word in m for word in args.only)]
    sections = json.loads(STORE.read_text()) if STORE.exists() else {}
    measured_on = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {_machine()}"
    for name in modules:
        print(f"== {name}", flush=True)
        rows = importlib.import_module(f"benchmarks.{name}").run()
        for row in rows:
            print(f"   {row['name']:<58} {_fmt(row['value'], row['unit']):>14}   {row.get('note', '')}", flush=True)
        paragraph = (importlib.import_module(f"benchmarks.{name}").__doc__ or "").strip().split("\n\n")[0]
        sections[name] = {"summary": " ".join(paragraph.split()), "rows": rows, "measured": measured_on}
        write_doc(sections)  # after every module: a later failure keeps what was measured
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
