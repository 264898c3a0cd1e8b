"""The RESULTS summary of multiverse reports: the validation criterion against a hand computation."""

from __future__ import annotations

import json

import pytest

from fin_ia_models.multiverse.report_summary import criterion, main


def _run(mv_ret: float, mv_rv: float) -> dict:
    def cell(ret, rv):
        return {"crps_ret": ret, "crps_rv": rv, "coverage_ret_50": 0.5, "coverage_ret_90": 0.9,
                "coverage_rv_50": 0.4, "coverage_rv_90": 0.8}

    scores = {}
    for h in (16, 24):
        scores[f"all|multiverse|{h}"] = cell(mv_ret, mv_rv)
        scores[f"all|garch_t|{h}"] = cell(0.010, 0.005)
        scores[f"all|block_bootstrap|{h}"] = cell(0.011, 0.004)  # the best rv baseline
        scores[f"all|random_walk|{h}"] = cell(0.020, 0.010)
    return {"scores": scores}


def test_criterion_uses_the_best_baseline_per_target(tmp_path, capsys):
    runs = [_run(0.0095, 0.0042), _run(0.0105, 0.0040)]
    # seed 0: ret skill 1 − 0.0095/0.010 = +5 %, rv 1 − 0.0042/0.004 = −5 % → 0; seed 1: −5 % and 0 → −2.5 %
    assert criterion(runs) == pytest.approx([0.0, -2.5])
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"runs": runs}))
    text = main([f"X={path}"])
    assert "| X | -1.2 ± 1.3 % | +0.0, -2.5 |" in text  # mean −1.25, std 1.25 (binary: just above)
    assert "| X | 0.01000 ± 0.00050 | +0.0 ± 5.0 % |" in text  # skills in the tables are against GARCH-t
    with pytest.raises(SystemExit):
        main([str(path)])
