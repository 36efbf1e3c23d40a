"""The pipeline listener against the fake VRChat's websocket: a burst of friend requests becomes one event,
other notifications none; a dropped connection is reopened with backoff; an expired session is signed in
again; the auth token never reaches a log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_vrchat import FakeVRChat
from flow_fixtures import LogRecorder
from flow_harness import FakeClock, FakeSecrets, good_user, settings_for

from flows.composition import open_batch, session_store
from flows.domain.settings import FlowsSettings
from flows.vrchat.pipeline import PipelineListener


def _wait(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def settings(fake: FakeVRChat, data_dir: Path) -> FlowsSettings:
    return settings_for(
        fake,
        data_dir,
        vrchat={"pipeline_url": fake.pipeline_url},
        listen={"debounce_s": 0.5, "reconnect_initial_s": 0.2, "reconnect_max_s": 1.0},
    )


@pytest.fixture
def heard(settings: FlowsSettings, clock: FakeClock, fake_secrets: FakeSecrets) -> Iterator[list[list[str]]]:
    """Runs the listener in a thread; yields the bursts it emitted."""
    bursts: list[list[str]] = []
    store = session_store(settings)

    def sign_in() -> str:
        with open_batch(settings, clock, credentials=fake_secrets.credentials) as batch:
            batch.gateway.sign_in()
        saved = store.load()
        assert saved is not None
        return saved.auth

    stop = threading.Event()
    listener = PipelineListener(settings, sign_in, store.clear, bursts.append, stop)
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    yield bursts
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the listener did not stop"


def test_bursts_reconnects_and_an_expired_session(
    fake: FakeVRChat, heard: list[list[str]], log_recorder: LogRecorder
) -> None:
    _wait(lambda: fake.pipeline_connections == 1)
    first = [fake.add_notification(good_user(n)) for n in range(3)]
    fake.add_notification(good_user(9), kind="invite")  # not a friend request: no event
    _wait(lambda: len(heard) == 1)
    assert heard == [first], "three requests within the debounce make one event"

    fake.drop_pipeline()
    _wait(lambda: fake.pipeline_connections == 2)
    second = fake.add_notification(good_user(4))
    _wait(lambda: len(heard) == 2)
    assert heard[1] == [second]

    logins = fake.password_logins
    fake.expire_sessions()
    _wait(lambda: fake.pipeline_connections == 3)
    assert fake.password_logins == logins + 1, "the expired session was replaced by one new login"
    third = fake.add_notification(good_user(5))
    _wait(lambda: len(heard) == 3)
    assert heard[2] == [third]

    tokens = list(fake.sessions)
    assert tokens and not any(token in line for token in tokens for line in log_recorder.lines)
    assert any("reconnecting to the pipeline" in line for line in log_recorder.lines)
