"""fin_ia_models is the library: it never imports dagster or fin_ia_pipeline (directly or transitively)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

MODELS = Path(__file__).resolve().parents[1] / "fin_ia_models"
FORBIDDEN = ("dagster", "fin_ia_pipeline")


def test_no_forbidden_import_statement():
    offenders = []
    for path in MODELS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(MODELS.parent)}:{node.lineno} {n}" for n in names
                          if n.split(".")[0] in FORBIDDEN]
    assert not offenders, offenders


def test_importing_every_module_loads_no_dagster():
    modules = sorted(
        ".".join(p.relative_to(MODELS.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in MODELS.rglob("*.py")
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "print(len(sys.modules)); assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=MODELS.parent)
    assert result.returncode == 0, result.stderr[-2000:]
