"""Event-driven runs end to end: `prefect server start`, `python -m flows serve` (the friend-requests
deployment with its trigger from prefect.yaml, no schedule, and the pipeline listener) and the fake VRChat
with its websocket. A friend request pushed on the pipeline is accepted within 15 s, also after the
connection was dropped; with the Prefect server gone, `serve` stops within seconds of SIGTERM. Takes
about a minute (the server and the served process start)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from fake_vrchat import FakeVRChat
from flow_harness import GROUP_ID, FakeSecrets, good_user
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect_server import kill_server, prefect_server, stop_process_group

from flows.orchestration.deployments import PREFECT_YAML
from flows.orchestration.serving import STOP_S

pytestmark = [pytest.mark.slow, pytest.mark.posix]

REPO = Path(__file__).resolve().parents[2]
WITHIN_S = 15.0


def _wait(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what}; the served process said:\n{log.read_text()}"
        time.sleep(0.1)
    return time.monotonic() - started


def _friend_requests_on_events_only(folder: Path) -> Path:
    """prefect.yaml's friend-requests deployment, its trigger kept and its schedule dropped (so only an
    event can start a run)."""
    document = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    deployment = next(d for d in document["deployments"] if d["name"] == "friend-requests")
    assert deployment["triggers"], "prefect.yaml has no trigger for friend-requests"
    deployment["schedules"] = []
    path = folder / "prefect.yaml"
    path.write_text(yaml.safe_dump({"deployments": [deployment]}), encoding="utf-8")
    return path


def _deployed(url: str) -> bool:
    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name("friend-requests/friend-requests")
        except Exception:  # not registered yet
            return False
        return True


def test_a_friend_request_heard_on_the_pipeline_is_accepted_within_15_s(
    tmp_path: Path, fake: FakeVRChat, fake_secrets: FakeSecrets, data_dir: Path
) -> None:
    home = tmp_path / "prefect-home"
    home.mkdir()
    with prefect_server(home) as env:
        url = env["PREFECT_API_URL"]
        serve_env = {
            **env,
            "FLOWS_DATA_DIR": str(data_dir),
            "FLOWS_VRCHAT__BASE_URL": fake.url,
            "FLOWS_VRCHAT__PIPELINE_URL": fake.pipeline_url,
            "FLOWS_LISTEN__DEBOUNCE_S": "1.0",
            "FLOWS_LISTEN__RECONNECT_INITIAL_S": "0.5",
            "FLOWS_GROUP__GROUP_ID": GROUP_ID,
            "VRCHAT_USERNAME": fake_secrets.username,
            "VRCHAT_PASSWORD": fake_secrets.password,
            "VRCHAT_TOTP_SECRET": fake_secrets.totp_secret,
        }
        log = tmp_path / "serve.log"
        with log.open("w") as out:
            served = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "flows",
                    "serve",
                    "--prefect-yaml",
                    str(_friend_requests_on_events_only(tmp_path)),
                ],
                env=serve_env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait(lambda: fake.pipeline_connections >= 1 and _deployed(url), 120, "never listening", log)
            time.sleep(2.0)  # the deployment's trigger reaches the server's automations

            first = good_user(1)
            took_first = _wait_for_friend(fake, first.id, log, lambda: fake.add_notification(first))

            fake.drop_pipeline()  # a network blip: the listener reconnects
            _wait(lambda: fake.pipeline_connections >= 2, 30, "never reconnected", log)
            second = good_user(2)
            took_second = _wait_for_friend(fake, second.id, log, lambda: fake.add_notification(second))
            _wait(lambda: second.id in fake.invite_posts, 30, "the new friend was never invited", log)

            kill_server(env)  # the server goes away; then serve is asked to stop
            time.sleep(1.0)
            asked = time.monotonic()
            served.terminate()
            try:
                served.wait(timeout=60)
            finally:
                stopped_in = time.monotonic() - asked
        finally:
            if served.poll() is None:
                stop_process_group(served)
    print(f"accepted {took_first:.1f} s and {took_second:.1f} s after the request was sent")
    print(f"stopped {stopped_in:.1f} s after SIGTERM with the Prefect server gone")
    assert took_first <= WITHIN_S and took_second <= WITHIN_S, (took_first, took_second)
    assert fake.invite_posts == {first.id: 1, second.id: 1}
    assert stopped_in <= STOP_S + 5.0, f"serve took {stopped_in:.0f} s to stop:\n{log.read_text()[-3000:]}"
    assert served.returncode == 0, log.read_text()[-3000:]


def _wait_for_friend(fake: FakeVRChat, user_id: str, log: Path, send: Callable[[], object]) -> float:
    started = time.monotonic()
    send()
    _wait(lambda: user_id in fake.friends, 90, f"{user_id} was never accepted", log)
    return time.monotonic() - started
