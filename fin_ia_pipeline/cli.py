"""``fin-ia`` command line: ``demo`` (materialize the graph offline), ``validate`` (check candle files),
``lineage`` (a registered model's chain down to the candles) and ``decide`` (an agent's decision on the last stored
candle; research only, never an order)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path


def _cmd_demo(args: argparse.Namespace) -> int:
    os.environ.setdefault("DAGSTER_HOME", str(Path("dagster_home").resolve()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ["FIN_IA_SOURCE"] = args.source
    os.environ.setdefault("FIN_IA_PROFILE", "demo")
    import dagster as dg

    from fin_ia_pipeline.demo import format_summary, run_demo
    from fin_ia_pipeline.settings import PipelineSettings

    settings = PipelineSettings.from_env()
    with dg.DagsterInstance.get() as instance:
        summary = run_demo(settings, instance)
    print(format_summary(summary, settings))
    return 1 if summary["failed_partitions"] else 0


def _cmd_validate(args: argparse.Namespace) -> int:
    """Check every file, each on its own: one FAIL line (with the file, line and rule) per bad file, the others
    still checked, exit status 1 if any failed; never a traceback for a bad or missing input."""
    from fin_ia_models.data.sources.base import MarketNotFoundError
    from fin_ia_models.data.sources.files import read_candle_file
    from fin_ia_models.data.validation import CandleValidationError, validate_candles

    failed = 0
    for path in args.files:
        try:
            frame = read_candle_file(path, timeframe=args.timeframe)
            report = validate_candles(frame, frame.attrs["timeframe"])
        except MarketNotFoundError:
            print(f"FAIL {path}: no such file")
            failed += 1
            continue
        except (CandleValidationError, ValueError) as err:
            print(f"FAIL {path}\n  {err}")
            failed += 1
            continue
        except OSError as err:  # unreadable: permissions, I/O error
            print(f"FAIL {path}: cannot read it ({type(err).__name__}: {err.strerror or err})")
            failed += 1
            continue
        print(f"ok   {path}\n  {report.summary()}")
        for gap in report.gaps[: args.show_gaps]:
            print(f"  gap {gap}")
    if len(args.files) > 1:
        print(f"{len(args.files) - failed} of {len(args.files)} files ok")
    return 1 if failed else 0


def _cmd_lineage(args: argparse.Namespace) -> int:
    from fin_ia_models.tracking.lineage import LineageError, format_lineage, lineage_json, resolve_lineage
    from fin_ia_pipeline.settings import PipelineSettings

    uri = args.tracking_uri or PipelineSettings.from_env().mlflow_tracking_uri
    try:
        node = resolve_lineage(uri, args.model)
    except LineageError as err:
        print(f"fin-ia lineage: {err}", file=sys.stderr)
        return 2
    print(lineage_json(node) if args.json else format_lineage(node))
    return 0


def _cmd_decide(args: argparse.Namespace) -> int:
    """The agent's target position after the last stored candle: research output, never an order."""
    import json

    from fin_ia_pipeline.live.decide import decide_last
    from fin_ia_pipeline.settings import PipelineSettings

    try:
        d = decide_last(PipelineSettings.from_env(), args.symbol, args.model)
    except (ValueError, LookupError) as err:  # unknown model or alias, no candles, a mismatched stack: a message
        print(f"fin-ia decide: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(d.to_dict(), default=float))
    else:
        print(f"{d.symbol} after the candle opened {_utc(d.timestamp)}: target position {d.position:+.3f} "
              f"({d.event}; decided at the token ending {_utc(d.token_end)}), multiverse next-token return mean "
              f"{d.mv_mean:+.5f} std {d.mv_std:.5f} q05 {d.mv_q05:+.5f}, confidence {d.confidence:.2f}, "
              f"{d.elapsed_ms:.2f} ms; models {d.versions}. Research only: no order is placed.")
    return 0


def _utc(ms: int) -> str:
    from fin_ia_models.data.schema import format_ms

    return format_ms(ms) if ms >= 0 else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fin-ia", description="fin-ia research pipeline (research only; no trading).")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="materialize the whole asset graph on the embedded defaults (offline)")
    demo.add_argument("--source", default="synthetic", choices=["synthetic", "files", "binance"])
    demo.set_defaults(func=_cmd_demo)
    validate = sub.add_parser("validate", help="validate candle files and report gaps")
    validate.add_argument("files", nargs="+")
    validate.add_argument("--timeframe", default=None, help="override the timeframe read from the file name")
    validate.add_argument("--show-gaps", type=int, default=10, help="list at most this many gaps per file")
    validate.set_defaults(func=_cmd_validate)
    lineage = sub.add_parser("lineage", help="print a registered model's lineage down to the candle partitions")
    lineage.add_argument("model", help="NAME, NAME@ALIAS or NAME/VERSION, e.g. fin-ia-jepa@champion")
    lineage.add_argument("--json", action="store_true", help="machine-readable output")
    lineage.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI or the local store")
    lineage.set_defaults(func=_cmd_lineage)
    decide = sub.add_parser("decide", help="an agent's decision for the last closed candle in storage (no order)")
    decide.add_argument("symbol", help="e.g. BTC/USDT")
    decide.add_argument("--model", default=None, help="NAME@ALIAS or NAME/VERSION (default: the agent champion)")
    decide.add_argument("--json", action="store_true", help="machine-readable output")
    decide.set_defaults(func=_cmd_decide)
    args = parser.parse_args(argv)
    # Dagster flags preview/beta APIs we chose deliberately (partitioned checks, multi→single mappings) on every load.
    warnings.filterwarnings("ignore", message=".*(is currently in (preview|beta)|Definitions.resolve_job_def).*")
    # MLflow hints about dataset-source guessing and integer schema columns: informational, shown on every run.
    warnings.filterwarnings("ignore", module="mlflow.*", category=UserWarning)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
