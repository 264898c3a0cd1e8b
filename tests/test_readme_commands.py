"""Every `.venv/bin/...` command in README.md's code blocks runs, and succeeds, on the state `make demo` leaves.

The demo is run the way `make demo` runs it (the `fin-ia demo` CLI in a subprocess) on a temporary DAGSTER_HOME and
FIN_IA_HOME; then each README command is run with the same environment, `.venv/bin/X` replaced by this
interpreter's own script directory. A README that names a model version, alias or subcommand the demo does not
produce fails here instead of on a newcomer's machine.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def readme_commands() -> list[str]:
    """Commands of the README's ```bash blocks that start with .venv/bin/ (comments stripped)."""
    text = (REPO / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(".venv/bin/"):
                commands.append(line)
    return commands


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("readme")
    (tmp / "dagster_home").mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", tmp / "dagster_home" / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIN_IA_", "MLFLOW_"))}
    env.update(DAGSTER_HOME=str(tmp / "dagster_home"), FIN_IA_HOME=str(tmp / "fin_ia_home"))
    demo = subprocess.run([str(BIN / "fin-ia"), "demo"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert demo.returncode == 0, f"fin-ia demo failed:\n{demo.stdout[-3000:]}\n{demo.stderr[-3000:]}"
    return env


def test_the_readme_shows_commands():
    assert len(readme_commands()) >= 2


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs_on_the_demo_state(command, demo_env):
    argv = shlex.split(command)
    argv[0] = str(BIN / Path(argv[0]).name)
    result = subprocess.run(argv, cwd=REPO, env=demo_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert result.stdout.strip(), f"{command} printed nothing"
