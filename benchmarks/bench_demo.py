"""Wall time of `fin-ia demo` (install excluded) in a fresh DAGSTER_HOME and state root. Goal: ≤ 10 minutes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run() -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="fin-ia-bench-demo-"))
    try:
        (tmp / "dagster_home").mkdir()
        shutil.copy(REPO / "dagster_home" / "dagster.yaml", tmp / "dagster_home" / "dagster.yaml")
        env = {**os.environ, "DAGSTER_HOME": str(tmp / "dagster_home"), "FIN_IA_HOME": str(tmp / "state")}
        start = time.perf_counter()
        result = subprocess.run([str(Path(sys.executable).parent / "fin-ia"), "demo"], cwd=REPO, env=env,
                                capture_output=True, text=True)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    note = "goal ≤ 600 s on 2 cores" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
    return [{"name": "make demo (install excluded)", "value": seconds, "unit": "s", "note": note}]


if __name__ == "__main__":
    print(run())
