"""The one template every stage follows: LR schedule, config round trips, atomic writer, stage discovery, and the
asset-body size rule (bodies only wire)."""

from __future__ import annotations

import ast
import math
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from fin_ia_models.config import TimeSplit
from fin_ia_models.tokenizer.config import TokenizerConfig, profile_config
from fin_ia_models.training.schedule import LRSchedule
from fin_ia_models.utils.atomic import atomic_write_bytes, remove_stale_temporaries
from fin_ia_models.world_model.config import JEPAConfig, jepa_profile

REPO = Path(__file__).resolve().parents[1]


def _old_tokenizer_factor(step: int, total: int) -> float:  # the formula the tokenizer used before the template
    total = max(1, total)
    warmup = min(100, total // 10)
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def _old_jepa_factor(step: int, max_steps: int) -> float:  # the formula Fin-JEPA used before the template
    warmup = max(1, max_steps // 20)
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize("total", [1, 7, 9, 10, 19, 20, 39, 101, 999, 1000, 1001, 5000, 20_000])
def test_schedule_reproduces_both_former_schedules_exactly(total):
    tok, jepa = TokenizerConfig().schedule, JEPAConfig().schedule
    for step in sorted({0, 1, total // 20, total // 10, total // 2, total - 1, total, total + 5}):
        assert tok.factor(step, total) == _old_tokenizer_factor(step, total), (total, step)
        assert jepa.factor(step, total) == _old_jepa_factor(step, total), (total, step)


def test_schedule_rejects_bad_fields():
    with pytest.raises(ValueError, match="warmup_fraction"):
        LRSchedule(warmup_fraction=1.5)
    with pytest.raises(ValueError, match="floor"):
        LRSchedule(floor=-0.1)
    with pytest.raises(ValueError, match="warmup_min_steps <= warmup_max_steps"):
        LRSchedule(warmup_min_steps=10, warmup_max_steps=5)


@pytest.mark.parametrize("config", [profile_config("full", "vq"), profile_config("demo"), jepa_profile("full"),
                                    jepa_profile("cpu"), TimeSplit()])
def test_every_config_round_trips_through_json(config):
    import json

    again = type(config).from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_from_dict_refuses_unknown_fields():
    with pytest.raises(ValueError, match="no field.*'dropout'"):
        JEPAConfig.from_dict({**JEPAConfig().to_dict(), "dropout": 0.1})


def test_atomic_writer_replaces_whole_files_and_cleans_killed_writers_leftovers(tmp_path):
    target = tmp_path / "sub" / "model.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two" and not list(target.parent.glob(".*.tmp"))

    def failing(handle):
        handle.write(b"half")
        raise OSError("disk full")

    from fin_ia_models.utils.atomic import atomic_write

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, failing)
    assert target.read_bytes() == b"two" and not list(target.parent.glob(".*.tmp"))  # old file intact, no litter
    old = target.parent / ".model.bin.dead.tmp"  # what a SIGKILLed writer leaves
    fresh = target.parent / ".model.bin.live.tmp"  # a write in progress right now
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert remove_stale_temporaries(target.parent) == [old]
    assert fresh.exists() and target.exists()


def test_a_new_stage_folder_is_discovered_without_touching_other_files(tmp_path, monkeypatch):
    import fin_ia_pipeline
    from fin_ia_pipeline.definitions import build_definitions, stage_modules
    from fin_ia_pipeline.settings import PipelineSettings

    stage = tmp_path / "zz_extra_stage"
    stage.mkdir()
    (stage / "__init__.py").write_text("")
    (stage / "definitions.py").write_text(
        "import dagster as dg\n\n"
        "def build_defs(settings):\n"
        "    @dg.asset(group_name='extra', deps=['jepa_embeddings'])\n"
        "    def extra_report():\n"
        "        return None\n"
        "    return dg.Definitions(assets=[extra_report])\n")
    monkeypatch.setattr(fin_ia_pipeline, "__path__", [*fin_ia_pipeline.__path__, str(tmp_path)])
    assert "fin_ia_pipeline.zz_extra_stage.definitions" in stage_modules()
    defs = build_definitions(PipelineSettings(home=str(tmp_path / "home")))
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("extra_report")).group_name == "extra"
    # joins the retrain and automation selections by kind/group, not by name
    assert dg.AssetKey("extra_report") in defs.resolve_job_def("retrain_models").asset_layer.executable_asset_keys


def _asset_bodies() -> list[tuple[str, int]]:
    """(name, body lines without docstring) of every function decorated with dg.asset in fin_ia_pipeline."""
    found = []
    for path in (REPO / "fin_ia_pipeline").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any("asset" in ast.unparse(d).split("(")[0]
                                                         for d in node.decorator_list):
                body = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body
                found.append((f"{path.name}:{node.name}", body[-1].end_lineno - body[0].lineno + 1))
    return found


def test_asset_bodies_only_wire():
    bodies = _asset_bodies()
    assert len(bodies) >= 5
    too_long = [(name, n) for name, n in bodies if n > 40]
    assert not too_long, f"asset bodies over 40 lines do library work: {too_long}"
