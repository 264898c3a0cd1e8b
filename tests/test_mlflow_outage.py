"""MLflow outages around a training asset (#16), against a real tracking server and the real tokenizer_model asset.

- Server down before training: the step fails in seconds, before any training, with an error naming the URI.
- Server gone between training and logging: the step fails, the resumable checkpoint of the finished training is
  kept, and the retry (same Dagster run, so the same checkpoint folder) resumes from it instead of training again,
  then logs and registers the model.

The outage is real: the client talks HTTP to a real ``mlflow server`` through a small reverse proxy in this test,
which stops listening (connection refused) at the first logging request after training, and listens again once
Dagster has scheduled the step's retry.
"""

from __future__ import annotations

import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from fin_ia_models.data.sources.synthetic import SyntheticMarket, SyntheticMarketConfig
from fin_ia_pipeline.definitions import build_definitions
from fin_ia_pipeline.settings import PipelineSettings
from tests.test_pipeline_models import SPLIT, SYMBOLS, TOKENIZER_RUN, store_candles, window_days

BIN = Path(sys.executable).parent
# requests MLflow makes to open the run, before training; anything else comes after training
OPENING = ("/experiments/get-by-name", "/experiments/create", "/runs/create", "/health")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OutageProxy:
    """HTTP reverse proxy to ``upstream``; ``fail_after_opening`` makes it go down at the first request that is not
    part of opening a run (the first logging call after training), ``restore`` brings it back on the same port."""

    def __init__(self, upstream_port: int) -> None:
        self.port, self.upstream_port = free_port(), upstream_port
        self.fail_after_opening = False
        self.outage_started = threading.Event()
        self.paths: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _forward(self) -> None:
                proxy.paths.append(self.path)
                if proxy.fail_after_opening and not any(p in self.path for p in OPENING):
                    proxy.fail_after_opening = False
                    proxy.outage_started.set()
                    threading.Thread(target=proxy.stop).start()  # stop listening: new connections are refused
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)  # and this request gets no answer
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def restore(self) -> None:
        if self._server is None:
            self.start()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server (sqlite backend, proxied artifacts) in a subprocess."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    log = open(root / "server.log", "w")
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def pipeline(tmp_path, tracking_uri: str):
    settings = PipelineSettings(home=str(tmp_path), symbols=SYMBOLS, split=SPLIT, start_date="2023-12-01",
                                mlflow_tracking_uri=tracking_uri)
    store_candles(settings, SyntheticMarket(SyntheticMarketConfig(seed=3)), window_days())
    return settings, build_definitions(settings)


def checkpoint_files(home: Path) -> list[Path]:
    return sorted((home / "checkpoints").rglob("last.ckpt")) if (home / "checkpoints").exists() else []


def test_an_unreachable_server_fails_the_step_before_training(tmp_path, caplog):
    port = free_port()  # nobody listens there
    settings, defs = pipeline(tmp_path, f"http://127.0.0.1:{port}")
    caplog.set_level(logging.INFO, logger="fin_ia")
    started = time.monotonic()
    with dg.instance_for_test() as instance:
        result = dg.materialize(list(defs.assets), selection=["tokenizer_model"], resources=defs.resources,
                                instance=instance, run_config=TOKENIZER_RUN, raise_on_error=False)
    seconds = time.monotonic() - started
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.error.to_string()
    assert f"cannot reach the MLflow tracking server http://127.0.0.1:{port}" in message
    assert "TrackingStoreError" in message
    assert not any("training" in r.getMessage() and "tokenizer on" in r.getMessage() for r in caplog.records)
    assert checkpoint_files(tmp_path) == []  # nothing was trained
    assert seconds < 30, f"took {seconds:.1f} s"


@pytest.mark.slow
def test_an_outage_after_training_keeps_the_checkpoint_and_the_retry_does_not_retrain(tmp_path, mlflow_server,
                                                                                      caplog):
    proxy = OutageProxy(mlflow_server)
    settings, defs = pipeline(tmp_path, proxy.uri)
    # Dagster's own step retry: the same run, hence the same checkpoint folder (a UI re-execution shares it too,
    # through the root run id)
    job = dg.define_asset_job("tokenizer_with_retry", selection=["tokenizer_model"],
                              op_retry_policy=dg.RetryPolicy(max_retries=1, delay=2))
    job_defs = dg.Definitions(assets=list(defs.assets), jobs=[job], resources=defs.resources)
    caplog.set_level(logging.INFO, logger="fin_ia")
    proxy.fail_after_opening = True

    with dg.instance_for_test() as instance:
        def restore_when_retry_is_scheduled():
            proxy.outage_started.wait(300)
            while True:  # the store comes back once the failed attempt is over and its retry is scheduled
                if any(instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
                       for run in instance.get_runs()):
                    proxy.restore()
                    return
                time.sleep(0.2)

        watcher = threading.Thread(target=restore_when_retry_is_scheduled, daemon=True)
        watcher.start()
        result = job_defs.resolve_job_def("tokenizer_with_retry").execute_in_process(
            instance=instance, run_config=TOKENIZER_RUN, raise_on_error=False)
        watcher.join(timeout=5)

    assert proxy.outage_started.is_set(), f"the outage never started; requests: {proxy.paths}"
    events = result.all_events
    types = [e.event_type for e in events]
    assert dg.DagsterEventType.STEP_UP_FOR_RETRY in types, "the first attempt did not fail on the outage"
    assert result.success, "the retry did not succeed"
    messages = [r.getMessage() for r in caplog.records]
    assert sum("saved complete checkpoint" in m for m in messages) == 1  # trained to the end once, not twice
    resumed = [m for m in messages if m.startswith("resuming from a complete checkpoint")]
    assert resumed, "the retry trained again instead of resuming the finished training"
    assert not any("saved periodic checkpoint" in m for m in messages[messages.index(resumed[0]):])
    assert checkpoint_files(tmp_path) == []  # deleted only once the model was logged
    meta = result.asset_materializations_for_node("tokenizer_model")[0].metadata
    assert meta["mlflow_model_version"].value == "1"
