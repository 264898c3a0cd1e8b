"""``python -m fin_ia_models.agents.report``: Strate IV agents against the baselines on real Binance candles (issues
10 and 11), outside the orchestrator, through the same stage code as the pipeline.

Chain: tokenizer and Fin-JEPA (loaded with ``--tokenizer``/``--jepa`` or trained here on candles up to the end of the
validation window, as ``multiverse.report`` does) → tokens and causal embeddings of every symbol → one multiverse
(seed ``--upstream-seed``, trained on the training window) → its futures at every token (``summary_frame``: the
``multiverse_trajectories`` contract) → ``AgentData`` (``agent_windows``) → PPO and the CVaR planner for every seed in
``--seeds`` (trained ≤ 2023-09-30, chosen on 2023-Q4) → ``agent_report.window_report`` on validation and on 2024.

Nothing is chosen on 2024: every configuration is fixed by the arguments before the run, each agent's parameters are
chosen on validation inside its training, and the test tables are printed once. DSR: N = the agent trainings of this
command (``len(seeds) × 2``), their validation Sharpe ratios give the trials' variance (in the pipeline N comes from
MLflow instead). Prints markdown and writes every number to JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from fin_ia_models.config import PROFILES, TimeSplit

log = logging.getLogger("fin_ia.agents")
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance"


def trajectories_frames(model, tokens, embeddings, candles, seed: int) -> dict:
    """symbol → the ``multiverse_trajectories`` frame (futures at every usable token), as the pipeline stores it."""
    from fin_ia_models.multiverse.stage import sample_usable
    from fin_ia_models.multiverse.trajectories import summary_frame

    return {symbol: summary_frame(sample_usable(model, tokens[symbol], embeddings[symbol], candles[symbol], seed)[0],
                                  model.config.eval_horizons) for symbol in candles}


def run_report(args: argparse.Namespace) -> dict:
    from fin_ia_models.agents.profiles import cvar_planner_profile, ppo_profile
    from fin_ia_models.agents.stage import agent_windows, fit_cvar_planner_agent, fit_ppo_agent
    from fin_ia_models.evaluation.agent_report import agent_run_metrics, markdown_table, window_report
    from fin_ia_models.evaluation.backtest import CostConfig
    from fin_ia_models.multiverse.report import upstream_chain
    from fin_ia_models.multiverse.stage import symbol_contexts, training_arrays
    from fin_ia_models.multiverse.train import train_multiverse

    split = TimeSplit()
    started = time.perf_counter()
    up = upstream_chain(args, split)
    candles, tokenizer, tokens, embeddings, versions, mv_config = (up.candles, up.tokenizer, up.tokens,
                                                                   up.embeddings, up.versions, up.config)
    train_start, train_end = split.range_ms("train")
    contexts = symbol_contexts(tokens, embeddings, candles, mv_config)
    features, targets = training_arrays(contexts, candles, mv_config, train_start, train_end)
    multiverse = train_multiverse(features, targets, mv_config, args.upstream_seed, tokenizer).model
    trajectories = trajectories_frames(multiverse, tokens, embeddings, candles, args.upstream_seed)
    windows = agent_windows(embeddings, trajectories, candles, split)
    upstream_s = time.perf_counter() - started
    log.info("upstream chain ready in %.0f s: %s", upstream_s,
             {s: {k: len(w) for k, w in ws.items()} for s, ws in windows.items()})

    ppo_config = ppo_profile(args.profile, **({"total_timesteps": args.ppo_timesteps} if args.ppo_timesteps else {}))
    cvar_config = cvar_planner_profile(args.profile, **({"max_steps": args.cvar_steps,
                                                         "eval_every_n_steps": max(1, args.cvar_steps // 10)}
                                                        if args.cvar_steps else {}))
    agents, trials, train_s = {}, [], {}
    for seed in args.seeds:
        for name, fit, config in (("ppo", fit_ppo_agent, ppo_config), ("cvar", fit_cvar_planner_agent, cvar_config)):
            t0 = time.perf_counter()
            result = fit(windows=windows, split=split, config=config, seed=seed)
            train_s[f"{name}_seed{seed}"] = time.perf_counter() - t0
            agents[f"{name}_seed{seed}"] = result.model
            trials.append(result.metrics["trial_val_sharpe"])
            log.info("%s seed %d trained in %.0f s: %s", name, seed, train_s[f"{name}_seed{seed}"],
                     result.info["summary"])
    trial_sharpes = np.asarray(trials)
    costs = CostConfig(ppo_config.env.fee_bps, ppo_config.env.slippage_bps)
    reports, tables = {}, {}
    for window in ("val", "test"):
        report = window_report(window, agents, {s: w[window] for s, w in windows.items()}, candles,
                               *split.range_ms(window), costs, trial_sharpes, n_boot=args.n_boot, seed=0)
        tables[window] = markdown_table(report)
        reports[window] = {name: {**score.row(), "undefined": score.undefined} for name, score in report.scores.items()}
        reports[window]["_gate_inputs"] = {name: agent_run_metrics(report, name) for name in agents}
    return {"tables": tables, "scores": reports, "trial_val_sharpes": trials, "train_s": train_s,
            "upstream_s": upstream_s, "wall_time_s": time.perf_counter() - started, "versions": versions,
            "multiverse_config": mv_config.to_dict(), "ppo_config": ppo_config.to_dict(),
            "cvar_config": cvar_config.to_dict(), "symbols": sorted(windows),
            "rows": {s: {k: len(w) for k, w in ws.items()} for s, ws in windows.items()},
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}


def seed_table(report: dict, seeds: list[int]) -> str:
    """Markdown: per agent kind and window, net Sharpe mean ± std, min … max over seeds, and the DSR range."""
    from fin_ia_models.evaluation.uncertainty import seed_spread

    lines = ["| agent | window | net Sharpe mean ± std (min … max) over seeds | DSR min … max |", "|---|---|---|---|"]
    for kind in ("ppo", "cvar"):
        for window in ("val", "test"):
            rows = [report["scores"][window][f"{kind}_seed{s}"] for s in seeds]
            sharpes = [r["sharpe"] for r in rows]
            dsr = [r["dsr"] for r in rows]
            finite = [v for v in sharpes if np.isfinite(v)]
            cell = "undefined"
            if len(finite) >= 2:
                spread = seed_spread(finite, min_seeds=2)
                cell = f"{spread.mean:.2f} ± {spread.std:.2f} ({spread.min:.2f} … {spread.max:.2f}), n = {spread.n}"
            lines.append(f"| {kind} | {window} | {cell} | {np.nanmin(dsr):.2f} … {np.nanmax(dsr):.2f} |")
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--symbols", nargs="+", default=["BTCUSDT", "ETHUSDT"])
    parser.add_argument("--timeframe", default="1h")
    parser.add_argument("--profile", default="cpu", choices=PROFILES)
    parser.add_argument("--tokenizer", type=Path, default=None, help="load this tokenizer checkpoint, don't train")
    parser.add_argument("--jepa", type=Path, default=None, help="load this Fin-JEPA checkpoint, don't train")
    parser.add_argument("--upstream-seed", type=int, default=0, help="seed of the tokenizer/JEPA/multiverse")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="MultiverseConfig overrides")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="agent training seeds")
    parser.add_argument("--ppo-timesteps", type=int, default=None, help="override the profile's PPO env steps")
    parser.add_argument("--cvar-steps", type=int, default=None, help="override the profile's planner gradient steps")
    parser.add_argument("--n-boot", type=int, default=1000, help="stationary bootstrap resamples per interval")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    parser.add_argument("--output-dir", type=Path, default=Path(".fin_ia/agents_report"))  # git-ignored
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    report = run_report(args)
    for window, title in (("val", "validation 2023-10-02 … 2023-12-31"), ("test", "test 2024 (printed once)")):
        print(f"\n### {title}, seeds {args.seeds}\n\n{report['tables'][window]}")
    print(f"\n### seed spread\n\n{seed_table(report, args.seeds)}")
    out = args.output_dir / "agents_report.json"
    out.write_text(json.dumps(report, indent=1, default=float))
    print(f"wall time {report['wall_time_s']:.0f} s (upstream {report['upstream_s']:.0f} s); wrote {out}")
    return report


if __name__ == "__main__":
    main()
