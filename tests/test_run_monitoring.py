"""A GPU step whose run worker is SIGKILLed must not block later GPU steps (#16).

Real processes end to end, with the instance file the project ships (dagster_home/dagster.yaml: run queue, `gpu`
pool limit 1, run monitoring): a Dagster code server (`dagster api grpc`), the daemon (`dagster-daemon run`: run
queue and run monitoring) and runs launched with `dagster job launch`, i.e. the path a UI launch takes. A tiny
asset in the `gpu` pool sleeps; a second run of it waits in the run queue (no process: waiting costs nothing); the
first run's worker is killed with SIGKILL while its step holds the pool slot. The code server marks that run FAILED,
the monitoring daemon frees its slot, and the waiting run gets it and succeeds.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

DEFS = '''
import time
import dagster as dg


class Nap(dg.Config):
    seconds: float = 0.0


# pool "gpu" exactly as fin_ia_pipeline/compute.py declares GPU work
@dg.asset(pool="gpu")
def gpu_step(config: Nap) -> None:
    time.sleep(config.seconds)


# one process per run: SIGKILL of the run worker kills the step that holds the slot
defs = dg.Definitions(assets=[gpu_step], executor=dg.in_process_executor)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.25):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.mark.slow
def test_sigkilled_gpu_run_is_failed_and_its_pool_slot_freed(tmp_path):
    from dagster import DagsterInstance, DagsterRunStatus
    from dagster._core.events import DagsterEventType

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")  # the shipped instance file
    (tmp_path / "defs.py").write_text(DEFS)
    port = free_port()
    (tmp_path / "workspace.yaml").write_text(
        f"load_from:\n  - grpc_server:\n      host: localhost\n      port: {port}\n      location_name: t\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "OMP_NUM_THREADS": "1"}
    DagsterInstance.from_config(str(home)).dispose()  # initialise the storage once, before two processes race for it
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, *argv: str) -> subprocess.Popen:
        return subprocess.Popen([str(BIN / argv[0]), *argv[1:]], cwd=tmp_path, env=env,
                                stdout=open(logs / f"{name}.out", "w"), stderr=subprocess.STDOUT,
                                start_new_session=True)

    def launch(seconds: float) -> str:
        before = {r.run_id for r in instance.get_runs()}
        subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-j", "__ASSET_JOB",
                        "--config-json", f'{{"ops": {{"gpu_step": {{"config": {{"seconds": {seconds}}}}}}}}}'],
                       cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60)
        (run_id,) = {r.run_id for r in instance.get_runs()} - before
        return run_id

    def holders() -> set[str]:
        """Runs holding a gpu pool slot."""
        return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info("gpu").claimed_slots}

    server = start("server", "dagster", "api", "grpc", "-f", "defs.py", "-h", "localhost", "-p", str(port))
    daemon = None
    try:
        instance = DagsterInstance.from_config(str(home))
        assert instance.run_monitoring_enabled, "dagster_home/dagster.yaml must turn run monitoring on"
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
        wait_for(lambda: server.poll() is None and socket.socket().connect_ex(("localhost", port)) == 0, 60,
                 "the code server")
        daemon = start("daemon", "dagster-daemon", "run", "-w", "workspace.yaml")

        stuck = launch(seconds=600)
        wait_for(lambda: holders() == {stuck}, 60, "the GPU step to claim the gpu pool slot")
        (started,) = [e for e in instance.all_logs(stuck, of_type=DagsterEventType.ENGINE_EVENT)
                      if "Started process for run" in e.message]
        worker_pid = int(started.dagster_event.engine_event_data.metadata["pid"].value)
        assert instance.get_run_by_id(stuck).status == DagsterRunStatus.STARTED

        # A second GPU run waits cheaply: queued by the run queue (no process at all), not spinning in a worker.
        waiting = launch(seconds=0)
        time.sleep(5)  # several dequeue ticks of the daemon
        assert instance.get_run_by_id(waiting).status == DagsterRunStatus.QUEUED

        os.kill(worker_pid, signal.SIGKILL)  # mid-step: the step sleeps for 600 s holding the slot
        killed_at = time.monotonic()
        wait_for(lambda: instance.get_run_by_id(stuck).status == DagsterRunStatus.FAILURE and stuck not in holders(),
                 30, "the killed run to be FAILED and its gpu slot freed")
        recovered_s = time.monotonic() - killed_at
        print(f"killed run FAILED and gpu slot freed {recovered_s:.1f} s after SIGKILL")

        wait_for(lambda: instance.get_run_by_id(waiting).status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE),
                 60, "the waiting GPU step's run")
        assert instance.get_run_by_id(waiting).status == DagsterRunStatus.SUCCESS
        print(f"the waiting GPU run succeeded {time.monotonic() - killed_at:.1f} s after the SIGKILL")
        assert holders() == set()
    finally:
        for proc in (daemon, server):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
