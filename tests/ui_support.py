"""Helpers for the real-browser UI test: a throwaway `dagster dev` and a headless Chromium driven by Playwright.

`dagster dev` (not the bare webserver) because the instance uses the QueuedRunCoordinator (Dagster's default): a run
launched from the UI is only queued, and the daemon that `dagster dev` starts is what dequeues and launches it.
Chromium is Debian's package; `playwright install` cannot download a browser on machines without outside network,
so the browser is always given by path.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")

# Flags a root user on a machine without outside network needs; Playwright adds --user-data-dir itself from
# launch_persistent_context's first argument (it refuses the flag in `args`).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",  # running as root: the setuid sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no component/variations/safe-browsing fetches to unreachable hosts
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # small /dev/shm in containers crashes the renderer
)

WORKSPACE_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


@dataclass
class DevServer:
    """A running `dagster dev`, leader of its own process group (webserver, daemon, code servers, run workers)."""

    process: subprocess.Popen  # the `dagster dev` process; its pid is the process group id
    url: str  # http://127.0.0.1:PORT
    log_path: Path  # combined stdout/stderr of every process in the group

    def log_tail(self, chars: int = 4000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else "(no log)"
        return text[-chars:]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it; a tiny race with other processes remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_dagster_dev(dagster_home: Path, fin_ia_home: Path, log_path: Path, port: int | None = None,
                      settings: dict[str, str] | None = None) -> DevServer:
    """Start `dagster dev` on 127.0.0.1 with this repo's workspace, a fresh instance and the synthetic source
    (``settings``: other FIN_IA_* values, e.g. the files source for the backfill benchmark).

    The instance config is the repo's dagster_home/dagster.yaml, copied so the test never writes to the repo's
    DAGSTER_HOME. The onboarding ("Join the Dagster community") modal is marked seen the way the webserver itself
    marks it, so it does not cover the page.
    """
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    (dagster_home / ".nux").mkdir(exist_ok=True)
    (dagster_home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    port = port or free_port()
    # Defaults for every other FIN_IA_* setting, whatever the caller's shell exports (FIN_IA_STORAGE, FIN_IA_SYMBOLS).
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIN_IA_")}
    env.update(DAGSTER_HOME=str(dagster_home), FIN_IA_HOME=str(fin_ia_home), FIN_IA_SOURCE="synthetic",
               PYTHONUNBUFFERED="1")
    env.update(settings or {})
    workspace = str(REPO / "workspace.yaml")
    command = [sys.executable, "-m", "dagster", "dev", "-w", workspace, "-h", "127.0.0.1", "-p", str(port)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: teardown kills everything it spawned at once
        )
    return DevServer(process=process, url=f"http://127.0.0.1:{port}", log_path=log_path)


@contextmanager
def screenshot_on_failure(page, step: str, server: DevServer) -> Iterator[None]:
    """On any error inside, save the page as test-artifacts/ui_failure_<step>.png and re-raise saying what was shown.

    `page` is a Playwright Page (untyped here so this module imports without Playwright).
    """
    try:
        yield
    except Exception as err:
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"ui_failure_{step}.png"
        try:
            page.screenshot(path=shot)
            visible = " ".join(page.locator("body").inner_text(timeout=5_000).split())[:1500]
        except Exception as shot_err:  # the browser itself may be what broke; keep the original error in front
            visible = f"(could not capture the page: {shot_err})"
        raise AssertionError(
            f"UI step {step!r} failed: {err}\nURL: {page.url}\nOn screen: {visible}\nScreenshot: {shot}\n"
            f"dagster dev log tail:\n{server.log_tail(2000)}"
        ) from err


def graphql(url: str, query: str, timeout_s: float = 10.0, variables: dict | None = None) -> dict:
    """POST one GraphQL query to the webserver; returns the `data` object, raises on GraphQL errors."""
    payload = {"query": query, "variables": variables or {}}
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        body = json.loads(response.read())
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors from {url}: {body['errors']}")
    return body["data"]


def wait_until_ready(server: DevServer, location: str, timeout_s: float) -> None:
    """Block until the webserver answers and the code location `location` is loaded, or raise with the log tail."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            entries = graphql(server.url, WORKSPACE_QUERY, timeout_s=5)["workspaceOrError"].get("locationEntries", [])
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            last = f"not answering: {err}"
        else:
            entry = next((e for e in entries if e["name"] == location), None)
            if entry is None:
                last = f"no code location {location!r} among {[e['name'] for e in entries]}"
            elif entry["loadStatus"] == "LOADED":
                kind = entry["locationOrLoadError"]["__typename"]
                if kind == "PythonError":
                    raise RuntimeError(f"code location {location!r} failed to load: "
                                       f"{entry['locationOrLoadError']['message']}")
                return
            else:
                last = f"code location {location!r} is {entry['loadStatus']}"
        time.sleep(1.0)
    raise TimeoutError(f"dagster dev at {server.url} not ready after {timeout_s:.0f}s ({last}):\n{server.log_tail()}")


def stop_process_group(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the whole process group, SIGKILL whatever is left after `grace_s`, and reap the leader.

    The group is killed even when the leader has already exited: run workers and code servers it started may
    still be alive in it. `dagster dev` can hang in its own shutdown, hence the hard kill.
    """
    pgid = process.pid  # start_new_session=True made the leader's pid the group id
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break  # the group is empty: nothing left to stop
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        if not _group_alive(pgid):
            break
    if process.poll() is None:
        process.wait(timeout=5.0)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
