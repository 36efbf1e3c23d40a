"""A flow run whose process is killed (SIGKILL: no goodbye to the API) is marked Crashed by the
zombie-detection automation (`flows/orchestration/zombies.py`), against a real `prefect server start`,
instead of staying "Running" forever. Takes about a minute: Prefect's shortest heartbeat is 30 s."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect_server import prefect_server

from flows.orchestration.zombies import AUTOMATION, ensure_crash_detection

pytestmark = [pytest.mark.slow, pytest.mark.posix]

HEARTBEAT_S = 30  # Prefect's minimum
SILENCE_S = 45

_SLEEPY_FLOW = """
import sys, time
from prefect import flow
from prefect.runtime import flow_run

@flow(name="sleepy-social-run")
def sleepy() -> None:
    print(flow_run.id, flush=True)
    time.sleep(600)

sleepy()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with prefect_server(
        tmp_path_factory.mktemp("prefect-home"), PREFECT_FLOWS_HEARTBEAT_FREQUENCY=str(HEARTBEAT_S)
    ) as env:
        yield env


def _state(url: str, run_id: UUID) -> str:
    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
        return state.type.value if state else "NONE"


def test_a_killed_run_is_marked_crashed(server: dict[str, str], tmp_path: Path) -> None:
    url = server["PREFECT_API_URL"]
    with temporary_settings({PREFECT_API_URL: url}):
        ensure_crash_detection(silence_s=SILENCE_S)
        ensure_crash_detection(silence_s=SILENCE_S)  # idempotent: one automation
        with get_client(sync_client=True) as client:
            assert len(client.read_automations_by_name(AUTOMATION)) == 1
    script = tmp_path / "sleepy.py"
    script.write_text(_SLEEPY_FLOW)
    run = subprocess.Popen([sys.executable, str(script)], env=server, stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout is not None
        run_id = UUID(run.stdout.readline().strip())
        deadline = time.monotonic() + 60
        while _state(url, run_id) != "RUNNING":
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.5)
        time.sleep(3)  # its first heartbeat is sent as it starts
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    assert _state(url, run_id) == "RUNNING", "killed: nothing told the API"

    deadline = time.monotonic() + SILENCE_S + HEARTBEAT_S + 90
    while (state := _state(url, run_id)) == "RUNNING":
        assert time.monotonic() < deadline, "the killed run still shows as Running"
        time.sleep(2)
    assert state == "CRASHED"
