"""`prefect server start` on a free port with a home of its own, for the tests that need the whole server
(automations, deployment triggers, served runs), not only the API of `prefect_test_harness`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_RUNNING: dict[str, subprocess.Popen[bytes]] = {}


def kill_server(env: dict[str, str]) -> None:
    """Take the server of `env` away at once (SIGKILL), as a crash or a closed terminal would."""
    server = _RUNNING.pop(env["PREFECT_API_URL"])
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()


@contextmanager
def prefect_server(home: Path, **settings: str) -> Iterator[dict[str, str]]:
    """Yields the environment that reaches the server (`PREFECT_API_URL` and the given settings); stopped
    at the end unless `kill_server` took it away."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": url,
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        **settings,
    }
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (home / "server.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the Prefect server did not start"
            time.sleep(0.5)
        _RUNNING[url] = server
        yield env
    finally:
        if _RUNNING.pop(url, None) is not None:
            stop_process_group(server)
        log.close()


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to a process started with `start_new_session=True` and its children; SIGKILL after 30 s."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
