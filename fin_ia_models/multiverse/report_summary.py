"""Summarise ``multiverse.report`` runs for docs/RESULTS.md: the validation criterion that chooses a configuration and
pooled tables of every configuration next to the baselines.

    python -m fin_ia_models.multiverse.report_summary C=/tmp/r3/val_C/multiverse_report_val.json \
        A=/tmp/r3/val_A/multiverse_report_val.json ...

Criterion (per seed, then mean ± std over seeds): (skill of the 24 h return CRPS + skill of the 24 h realized-vol
CRPS) / 2, skill = 1 − CRPS / CRPS of the best baseline on that target. The tables pool all symbols ("all" rows),
skills against GARCH(1,1)-t; the baselines' rows come from the first run given (they are fitted identically in each).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

BASELINES = {"garch_t": "GARCH(1,1)-t", "block_bootstrap": "block bootstrap", "random_walk": "random walk"}


def _ms(values, digits: int = 5, sign: bool = False) -> str:
    a = np.asarray(values, float)
    return f"{a.mean():{'+' if sign else ''}.{digits}f} ± {a.std():.{digits}f}"


def _scores(runs: list[dict], model: str, h: int, metric: str) -> np.ndarray:
    return np.array([run["scores"][f"all|{model}|{h}"][metric] for run in runs])


def criterion(runs: list[dict], h: int = 24) -> np.ndarray:
    """(seeds,) validation criterion in percent (module docstring)."""
    out = []
    for run in runs:
        s = run["scores"]
        skills = [1 - s[f"all|multiverse|{h}"][m] / min(s[f"all|{b}|{h}"][m] for b in BASELINES)
                  for m in ("crps_ret", "crps_rv")]
        out.append(100 * np.mean(skills))
    return np.array(out)


def table(runs_by_label: dict[str, list[dict]], h: int) -> str:
    head = ("| model | CRPS return | skill vs GARCH-t | CRPS realized vol | skill vs GARCH-t | coverage ret 50 / 90 % "
            "| coverage rv 50 / 90 % |\n|---|---:|---:|---:|---:|---:|---:|")
    lines = [head]

    def line(label: str, runs: list[dict], model: str, skills: bool) -> str:
        get = lambda metric: _scores(runs, model, h, metric)  # noqa: E731
        skill = {m: _ms(100 * (1 - get(m) / _scores(runs, "garch_t", h, m)), 1, True) + " %" if skills else "–"
                 for m in ("crps_ret", "crps_rv")}
        return (f"| {label} | {_ms(get('crps_ret'))} | {skill['crps_ret']} | {_ms(get('crps_rv'))} | "
                f"{skill['crps_rv']} | {get('coverage_ret_50').mean():.2f} / {get('coverage_ret_90').mean():.2f} | "
                f"{get('coverage_rv_50').mean():.2f} / {get('coverage_rv_90').mean():.2f} |")

    for label, runs in runs_by_label.items():
        lines.append(line(label, runs, "multiverse", True))
    first = next(iter(runs_by_label.values()))
    lines += [line(name, first, key, False) for key, name in BASELINES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="LABEL=REPORT_JSON")
    args = parser.parse_args(argv)
    runs_by_label = {}
    for item in args.runs:
        label, sep, path = item.partition("=")
        if not sep:
            parser.error(f"expected LABEL=REPORT_JSON, got {item!r}")
        runs_by_label[label] = json.loads(Path(path).read_text())["runs"]
    parts = ["| configuration | criterion (mean ± std over seeds) | per seed |", "|---|---:|---|"]
    for label, runs in runs_by_label.items():
        c = criterion(runs)
        parts.append(f"| {label} | {_ms(c, 1, True)} % | {', '.join(f'{v:+.1f}' for v in c)} |")
    for h in sorted({int(k.split("|")[2]) for k in next(iter(runs_by_label.values()))[0]["scores"]}):
        parts += ["", f"**{h} candles, all symbols pooled**", "", table(runs_by_label, h)]
    text = "\n".join(parts)
    print(text)
    return text


if __name__ == "__main__":
    main()
