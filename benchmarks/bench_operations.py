"""Operating fin-ia from the UI: click → success of one candle partition, the hourly refresh run, and the full
BTC/USDT + ETH/USDT 1h history backfilled from the files source, each launched the way the UI launches it (GraphQL
``launchRun`` / ``launchPartitionBackfill`` against a real ``dagster dev``: webserver, daemon, queued run coordinator,
default run launcher). Reference floor, measured in the same run: reading and validating the same files directly.

Goals (issue 13): one partition ≤ 15 s, the hourly refresh ≤ 15 s, the full-history backfill ≤ 10 min with every
candle of the files stored exactly once and every check evaluated. Times are wall clock from the GraphQL request to
the run (or backfill) reaching a final state, on this machine's 2 cores.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from tests.ui_support import graphql, start_dagster_dev, stop_process_group, wait_until_ready

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "binance"
LOCATION = "fin_ia"
SYMBOLS = ("BTC/USDT", "ETH/USDT")
FIRST_DAY, LAST_DAY = "2017-08-17", "2024-12-31"  # the files end on 2024-12-31
RUN_TIMEOUT_S = 300.0
BACKFILL_TIMEOUT_S = 1800.0

LAUNCH_RUN = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on InvalidStepError { invalidStepKey }
  ... on RunConfigValidationInvalid { errors { message } } ... on UnauthorizedError { message } } }
"""
LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } ... on PartitionSetNotFoundError { message }
  ... on UnauthorizedError { message } } }
"""
RUN_STATUS = """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"""
BACKFILL_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status numPartitions } } }"""
FINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
FINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


@contextmanager
def dev_server(tmp: Path, name: str, settings: dict[str, str]):
    server = start_dagster_dev(tmp / name / "dagster_home", tmp / name / "fin_ia_home",
                               REPO / "test-artifacts" / f"bench_operations_{name}.log", settings=settings)
    try:
        started = time.perf_counter()
        wait_until_ready(server, LOCATION, 300)
        yield server, time.perf_counter() - started
    finally:
        stop_process_group(server.process)


def _selector(job: str, assets: bool) -> dict:
    selector = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "pipelineName": job}
    if assets:
        selector["assetSelection"] = [{"path": ["ohlcv_candles"]}]
    return selector


def launch_and_wait(url: str, job: str, tags: dict[str, str], assets: bool = True) -> tuple[float, str]:
    """Seconds from the launch request to the run's final state, and that state."""
    params = {"selector": _selector(job, assets), "mode": "default", "runConfigData": {},
              "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}}
    started = time.perf_counter()
    answer = graphql(url, LAUNCH_RUN, variables={"params": params})["launchRun"]
    if answer["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launchRun refused: {answer}")
    run_id = answer["run"]["runId"]
    while time.perf_counter() - started < RUN_TIMEOUT_S:
        status = graphql(url, RUN_STATUS, variables={"id": run_id})["runOrError"]["status"]
        if status in FINAL_RUN:
            return time.perf_counter() - started, status
        time.sleep(0.25)
    raise TimeoutError(f"run {run_id} of {job} not finished after {RUN_TIMEOUT_S:.0f}s")


def partition_tags(symbol: str, day: str) -> dict[str, str]:
    return {"dagster/partition": f"{day}|{symbol}", "dagster/partition/date": day, "dagster/partition/symbol": symbol}


def backfill_and_wait(url: str, partitions: list[str]) -> tuple[float, str]:
    params = {"assetSelection": [{"path": ["ohlcv_candles"]}], "partitionNames": partitions, "fromFailure": False}
    started = time.perf_counter()
    answer = graphql(url, LAUNCH_BACKFILL, timeout_s=120, variables={"params": params})["launchPartitionBackfill"]
    if answer["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"launchPartitionBackfill refused: {answer}")
    backfill_id = answer["backfillId"]
    while time.perf_counter() - started < BACKFILL_TIMEOUT_S:
        status = graphql(url, BACKFILL_STATUS, variables={"id": backfill_id})["partitionBackfillOrError"]["status"]
        if status in FINAL_BACKFILL:
            return time.perf_counter() - started, status
        time.sleep(2.0)
    raise TimeoutError(f"backfill {backfill_id} not finished after {BACKFILL_TIMEOUT_S:.0f}s")


def read_files_directly() -> tuple[float, dict[str, pd.DataFrame]]:
    """The floor: parse and validate both files, nothing else."""
    from fin_ia_models.data.sources.files import read_candle_file
    from fin_ia_models.data.validation import validate_candles

    started = time.perf_counter()
    frames = {}
    for symbol in SYMBOLS:
        frame = read_candle_file(DATA / f"{symbol.replace('/', '')}_1h.csv")
        validate_candles(frame, "1h")
        frames[symbol] = frame
    return time.perf_counter() - started, frames


def stored_vs_files(home: Path, files: dict[str, pd.DataFrame]) -> tuple[int, int, int]:
    """(candles in the files up to LAST_DAY, candles stored, stored duplicates) over both symbols."""
    expected = stored = duplicates = 0
    last_ms = int(pd.Timestamp(LAST_DAY, tz="UTC").timestamp() * 1000) + 86_400_000
    for symbol, frame in files.items():
        in_window = frame[(frame["timestamp"] >= int(pd.Timestamp(FIRST_DAY, tz="UTC").timestamp() * 1000))
                          & (frame["timestamp"] < last_ms)]
        folder = home / "storage" / "ohlcv_candles" / symbol.replace("/", "") / "1h"
        parts = [pd.read_parquet(p, columns=["timestamp"]) for p in sorted(folder.glob("*.parquet"))]
        timestamps = pd.concat(parts)["timestamp"] if parts else pd.Series(dtype="int64")
        expected += len(in_window)
        stored += int(timestamps.isin(in_window["timestamp"]).sum())
        duplicates += int(timestamps.duplicated().sum())
    return expected, stored, duplicates


def check_evaluations(dagster_home: Path) -> dict[str, int]:
    """Partitions with a stored evaluation of each candle check (read from the instance the daemon wrote)."""
    import dagster as dg

    counts = {}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for name in ("ohlc_consistent", "gaps_within_tolerance"):
            key = dg.AssetCheckKey(dg.AssetKey("ohlcv_candles"), name)
            records = instance.event_log_storage.get_asset_check_execution_history(key, limit=20_000)
            counts[name] = len({r.partition for r in records if getattr(r, "partition", None)} or records)
    return counts


def run() -> list[dict]:
    if not DATA.exists():
        return [{"name": "operations", "value": float("nan"), "unit": "s", "note": f"skipped: {DATA} absent"}]
    rows = []
    days = pd.date_range(FIRST_DAY, LAST_DAY, freq="D").strftime("%Y-%m-%d").tolist()
    partitions = [f"{day}|{symbol}" for symbol in SYMBOLS for day in days]
    floor, files = read_files_directly()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # The synthetic source (the default) for the hourly refresh: its market reaches the current hour.
        with dev_server(tmp, "synthetic", {}) as (server, ready_s):
            from fin_ia_pipeline.market_data.schedules import hourly_run_request_tags

            refresh_s = [launch_and_wait(server.url, "refresh_candles", hourly_run_request_tags(SYMBOLS), assets=False)
                         for _ in range(2)]
        rows.append({"name": "hourly refresh run (refresh_candles), first", "value": refresh_s[0][0], "unit": "s",
                     "note": f"goal ≤ 15 s; {refresh_s[0][1]}; dagster dev ready in {ready_s:.0f} s"})
        rows.append({"name": "hourly refresh run, second", "value": refresh_s[1][0], "unit": "s",
                     "note": f"goal ≤ 15 s; {refresh_s[1][1]}"})
        settings = {"FIN_IA_SOURCE": "files", "FIN_IA_DATA": str(DATA), "FIN_IA_SYMBOLS": ",".join(SYMBOLS),
                    "FIN_IA_START": FIRST_DAY}
        with dev_server(tmp, "files", settings) as (server, _):
            clicks = [launch_and_wait(server.url, "__ASSET_JOB", partition_tags("BTC/USDT", day))
                      for day in ("2024-03-01", "2024-03-02", "2024-03-03")]
            backfill_s, backfill_status = backfill_and_wait(server.url, partitions)
        expected, stored, duplicates = stored_vs_files(tmp / "files" / "fin_ia_home", files)
        evaluated = check_evaluations(tmp / "files" / "dagster_home")
    rows += [
        {"name": "one partition click → success, first", "value": clicks[0][0], "unit": "s",
         "note": f"goal ≤ 15 s; {clicks[0][1]}; BTC/USDT 2024-03-01, files source"},
        {"name": "one partition click → success, median of 3", "value": sorted(c[0] for c in clicks)[1], "unit": "s",
         "note": "goal ≤ 15 s; " + ", ".join(c[1] for c in clicks)},
        {"name": "full-history backfill, BTC+ETH 1h", "value": backfill_s, "unit": "s",
         "note": f"goal ≤ 600 s; {backfill_status}; {len(partitions)} partitions {FIRST_DAY}…{LAST_DAY}"},
        {"name": "floor: read + validate both files directly", "value": floor, "unit": "s",
         "note": f"{sum(len(f) for f in files.values())} candles"},
        {"name": "backfill / floor", "value": backfill_s / floor, "unit": "×", "note": "orchestration + storage cost"},
        {"name": "candles stored / candles in the files", "value": stored / max(expected, 1), "unit": "×",
         "note": f"{stored} of {expected}; {duplicates} duplicates; goal 1.00× and 0"},
        {"name": "partitions with ohlc_consistent evaluated", "value": evaluated["ohlc_consistent"], "unit": "",
         "note": f"of {len(partitions)}; gaps_within_tolerance: {evaluated['gaps_within_tolerance']}"},
    ]
    return rows


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for row in run():
        print(row)
