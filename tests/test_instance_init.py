"""The Makefile creates the Dagster instance once, before `make demo/test/ui` start processes that open it at the same
time (#16: two processes initialising a fresh sqlite instance at once left it unopenable in 2 of 3 rounds)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OPEN = "import dagster; i = dagster.DagsterInstance.get(); i.get_runs(limit=1); i.dispose()"


def make_recipe(target: str) -> tuple[list[str], list[str]]:
    """(prerequisites, recipe lines) of a Makefile rule."""
    text = (REPO / "Makefile").read_text()
    match = re.search(rf"^{target}:([^\n]*)\n((?:\t[^\n]*\n)*)", text, re.M)
    assert match, f"no {target} rule in the Makefile"
    return match.group(1).split(), [line.strip() for line in match.group(2).splitlines()]


def test_every_entry_point_initialises_the_instance_first():
    for target in ("demo", "test", "ui"):
        prerequisites, _ = make_recipe(target)
        assert "instance" in prerequisites, f"make {target} does not create the instance first"


@pytest.mark.slow
def test_the_instance_step_creates_a_store_that_concurrent_processes_then_open(tmp_path):
    (_, recipe) = make_recipe("instance")
    (line,) = recipe
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    command = line.replace("$(BIN)/python", sys.executable)
    subprocess.run(command, shell=True, check=True, env=env, timeout=120)
    assert {p.relative_to(home).as_posix() for p in home.rglob("*.db")} >= {
        "history/runs.db", "history/runs/index.db", "schedules/schedules.db"}
    workers = [subprocess.Popen([sys.executable, "-c", OPEN], env=env, stderr=subprocess.PIPE) for _ in range(3)]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()[-2000:]
    subprocess.run(command, shell=True, check=True, env=env, timeout=120)  # running it again changes nothing
