"""The flows under Prefect (`prefect_test_harness`): real flow runs against the fake VRChat, the decision
artifact, a clear failure without credentials, and, last, the scan for leaked secrets in everything the
session wrote: captured logs, Prefect's database (logs, states, parameters, artifacts), result storage and
every ledger and cookie folder."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_vrchat import FakeVRChat, Fault
from flow_harness import GROUP_ID, SCREENING, FakeClock, FakeSecrets, populate, run_batch, settings_for
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    DeploymentFilter,
    DeploymentFilterId,
)
from prefect.deployments.runner import RunnerDeployment
from prefect.logging.handlers import APILogWorker
from prefect.settings import (
    PREFECT_LOCAL_STORAGE_PATH,
    PREFECT_SERVER_DATABASE_CONNECTION_URL,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness

from flows.composition import open_batch
from flows.domain.friend_requests import process_friend_requests
from flows.domain.ledger import FriendLedger
from flows.domain.summary import BatchSummary
from flows.orchestration import follow_up
from flows.orchestration.exclusive import LEASE_S, social_slot
from flows.orchestration.follow_up import FOLLOW_UP_WAIT_S
from flows.orchestration.friend_requests import friend_requests
from flows.orchestration.group_invites import group_invites
from flows.orchestration.tasks import PREFECT_STEPS

pytestmark = pytest.mark.slow  # starts a Prefect test server (seconds)


@pytest.fixture(scope="module")
def prefect_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A Prefect test server for this module, with result storage in a folder the scan can read."""
    storage = tmp_path_factory.mktemp("prefect-results")
    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings({PREFECT_LOCAL_STORAGE_PATH: storage}),
    ):
        yield storage


@pytest.fixture
def flow_env(
    monkeypatch: pytest.MonkeyPatch, fake: FakeVRChat, data_dir: Path, fake_secrets: FakeSecrets
) -> Path:
    """Configuration and credentials through the environment, as `python -m flows serve` sees them."""
    settings = {
        "FLOWS_DATA_DIR": str(data_dir),
        "FLOWS_VRCHAT__BASE_URL": fake.url,
        "FLOWS_VRCHAT__READ_TIMEOUT_S": "1.0",
        "FLOWS_GROUP__GROUP_ID": GROUP_ID,
        "FLOWS_SCREENING__BLOCKED_NAME_PATTERNS": '["(?i)spam ?bot"]',
        "VRCHAT_USERNAME": fake_secrets.username,
        "VRCHAT_PASSWORD": fake_secrets.password,
        "VRCHAT_TOTP_SECRET": fake_secrets.totp_secret,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return data_dir


async def _artifacts(key: str) -> list[Any]:
    async with get_client() as client:
        return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


def test_the_friend_request_flow_runs_and_publishes_its_decisions(
    prefect_storage: Path, flow_env: Path, fake: FakeVRChat
) -> None:
    world = populate(fake, valid=4, abusive=2)
    fake.inject(Fault("GET", f"/users/{world.valid[3].id}", "missing_fields"))  # a failing task, logged

    state = friend_requests(start_jitter_s=0.0, return_state=True)

    assert state.is_completed()
    summary = state.result()
    assert isinstance(summary, BatchSummary)
    assert fake.friends == {user.id for user in world.valid[:3]}
    assert fake.invite_posts == dict.fromkeys(fake.friends, 1)
    assert (
        summary.counts["accepted"] == 3 and summary.counts["rejected"] == 2 and summary.counts["error"] == 1
    )
    artifacts = asyncio.run(_artifacts("friend-requests"))
    assert artifacts, "the run published no artifact"
    markdown = artifacts[0].data
    assert "| accepted | 3 |" in markdown and world.abusive[0].display_name in markdown
    assert "unreadable profile" in markdown


def test_a_run_stopped_by_failures_in_a_row_still_publishes_what_it_did(
    prefect_storage: Path, flow_env: Path, fake: FakeVRChat
) -> None:
    populate(fake, valid=5, abusive=0)
    fake.inject(Fault("GET", "/users/.*", "missing_fields", times=100))
    state = friend_requests(start_jitter_s=0.0, return_state=True)
    assert state.is_failed()
    assert "failed in a row" in (state.message or "") and "next run" in (state.message or "")
    artifacts = asyncio.run(_artifacts("friend-requests"))
    stopped = [artifact for artifact in artifacts if "stopped: 3 friend requests" in artifact.data]
    assert stopped, "the stopped run published no artifact"
    assert "## Last errors" in stopped[0].data and "unreadable profile" in stopped[0].data


def test_a_run_without_credentials_fails_with_a_clear_message(
    prefect_storage: Path, flow_env: Path, fake: FakeVRChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("VRCHAT_USERNAME", "VRCHAT_PASSWORD", "VRCHAT_TOTP_SECRET"):
        monkeypatch.delenv(name)
    monkeypatch.setattr("flows.domain.credentials._from_keyring", lambda key: None)
    state = friend_requests(start_jitter_s=0.0, return_state=True)
    assert state.is_failed()
    assert "export VRCHAT_USERNAME and VRCHAT_PASSWORD" in (state.message or "")
    assert fake.requests == []


def test_the_group_invite_flow_finishes_an_interrupted_invite_once(
    prefect_storage: Path, flow_env: Path, fake: FakeVRChat, clock: FakeClock, fake_secrets: FakeSecrets
) -> None:
    world = populate(fake, valid=2, abusive=0)
    fake.inject(
        Fault("POST", "/groups/.*/invites", "answer_lost")
    )  # the invite lands, its answer never comes
    settings = settings_for(fake, flow_env)
    run_batch(settings, clock, fake_secrets)
    ledger = FriendLedger(settings.ledger_path)
    assert [invite.state for invite in ledger.open_invites(GROUP_ID)] == ["sending"]

    state = group_invites(start_jitter_s=0.0, return_state=True)

    assert state.is_completed()
    assert ledger.open_invites(GROUP_ID) == []
    assert fake.invite_posts == {world.valid[0].id: 1, world.valid[1].id: 1}
    assert asyncio.run(_artifacts("group-invites"))
    ledger.close()


def test_a_batch_of_35_through_prefect_tasks_with_an_injected_clock(
    prefect_storage: Path, fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets
) -> None:
    world = populate(fake, valid=23, abusive=12)
    settings = settings_for(fake, data_dir, screening=SCREENING)

    @flow(name="friend-requests-injected-clock")
    def batch_under_prefect() -> BatchSummary:
        with open_batch(settings, clock, credentials=fake_secrets.credentials) as batch:
            return process_friend_requests(batch, PREFECT_STEPS)

    summary = batch_under_prefect()

    assert fake.friends == {user.id for user in world.valid}
    window_counts = [sum(1 for t in fake.accept_times if s - 60.0 < t <= s) for s in fake.accept_times]
    assert max(window_counts) == 10
    assert fake.invite_posts == dict.fromkeys(fake.friends, 1)
    assert summary.counts["rejected"] == 12


def test_overlapping_runs_take_turns_and_nobody_is_accepted_or_invited_twice(
    prefect_storage: Path, flow_env: Path, fake: FakeVRChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two friend-request runs and a group-invite run started at the same moment share one slot and run
    one after the other: every request is accepted once, every friend invited once, and no run crashes.
    (A tight rate window makes each run take seconds, so runs without the shared slot interleave.)"""
    world = populate(fake, valid=10, abusive=0)
    monkeypatch.setenv("FLOWS_FRIEND_REQUESTS__ACCEPT_LIMIT", "2")
    monkeypatch.setenv("FLOWS_FRIEND_REQUESTS__ACCEPT_WINDOW_S", "1.5")
    flows = [friend_requests, friend_requests, group_invites]
    states: list[Any] = [None] * len(flows)
    start = threading.Barrier(len(flows))

    def run(index: int) -> None:
        start.wait()
        states[index] = flows[index](start_jitter_s=0.0, return_state=True)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(flows))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert all(state is not None and state.is_completed() for state in states), states
    assert [state.result().outcome for state in states] == ["", "", ""]
    accepts = Counter(r.path for r in fake.requests if r.path.endswith("/accept"))
    assert fake.friends == {user.id for user in world.valid}
    assert sorted(accepts.values()) == [1] * 10, "each request accepted once"
    assert fake.invite_posts == dict.fromkeys(fake.friends, 1), "each friend invited once"


class _Errors(logging.Handler):
    """The messages of the ERROR records it sees."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_run_that_finds_another_working_skips_and_says_so(
    prefect_storage: Path, flow_env: Path, fake: FakeVRChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(fake, valid=2, abusive=0)
    monkeypatch.setenv("FLOWS_BUSY_WAIT_S", "1")
    errors = _Errors()
    prefect_internals = logging.getLogger("prefect._internal")
    prefect_internals.addHandler(errors)
    try:
        with social_slot(wait_s=10.0) as held:  # another run is working
            assert held
            state = group_invites(start_jitter_s=0.0, return_state=True)
    finally:
        prefect_internals.removeHandler(errors)
    assert errors.messages == [], "a normal skip is a warning, not an error"
    assert state.is_completed()
    assert state.result().outcome.startswith("skipped: another")
    assert fake.requests == []
    assert any("skipped: another" in artifact.data for artifact in asyncio.run(_artifacts("group-invites")))


def test_a_skipped_deployment_run_leaves_one_follow_up_that_waits_out_a_killed_holders_lease(
    prefect_storage: Path, flow_env: Path, fake: FakeVRChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pushed request whose run finds the slot held (by a run killed a minute ago, say) is not left
    for the 30-minute schedule: the skipped run asks for a follow-up of its deployment that waits for the
    slot as long as a lease can outlive its holder; two skips close together ask for one, even on either
    side of the end of a lease period (the idempotency key's)."""
    populate(fake, valid=1, abusive=0)
    monkeypatch.setenv("FLOWS_BUSY_WAIT_S", "1")
    runner = friend_requests.to_deployment(name="friend-requests")
    assert isinstance(runner, RunnerDeployment)
    deployment = runner.apply()
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", str(deployment))  # as in a served run
    periods = iter([7, 8])  # the two skips fall on either side of a lease period's end
    monkeypatch.setattr(follow_up, "lease_period", lambda: next(periods))
    with social_slot(wait_s=10.0) as held:
        assert held
        skips = [friend_requests(start_jitter_s=0.0, return_state=True) for _ in range(2)]
    with get_client(sync_client=True) as client:
        queued = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment]))
        )
    assert [run.parameters for run in queued] == [{"start_jitter_s": 0.0, "slot_wait_s": FOLLOW_UP_WAIT_S}]
    assert queued[0].state is not None and queued[0].state.is_scheduled()
    assert all(f"follow-up run {queued[0].id}" in skip.result().outcome for skip in skips)
    assert FOLLOW_UP_WAIT_S > LEASE_S
    assert fake.friends == set(), "the follow-up does the work, not the skipped runs"


def _readable(data: bytes) -> bytes:
    """`data` and what it decodes to: Prefect's result files are base64 of a pickle (wrapped in lines), or a
    JSON record whose fields hold one; a raw scan sees neither's strings."""
    forms = [data]
    with contextlib.suppress(ValueError):
        forms += [_readable(text.encode()) for text in _strings(json.loads(data))]
    with contextlib.suppress(ValueError):
        forms.append(base64.b64decode(b"".join(data.split()), validate=True))
    return b"\n".join(forms)


def _strings(document: Any) -> Iterator[str]:
    if isinstance(document, str):
        yield document
    elif isinstance(document, dict):
        for value in document.values():
            yield from _strings(value)
    elif isinstance(document, list):
        for value in document:
            yield from _strings(value)


def _prefect_database(url: str) -> Path:
    return Path(url.split("///", 1)[1])


def test_no_secret_leaks_anywhere(
    prefect_storage: Path,
    fake_secrets: FakeSecrets,
    log_recorder: Any,
    written_files: list[Path],
) -> None:
    """Runs last in this module (pytest keeps file order): scans what every scenario of the session wrote."""
    APILogWorker.drain_all(timeout=10)
    database = _prefect_database(PREFECT_SERVER_DATABASE_CONNECTION_URL.value())
    places: dict[str, bytes] = {"captured logs": "\n".join(log_recorder.lines).encode()}
    files = [database, *database.parent.glob("*"), *prefect_storage.rglob("*")]
    for folder in written_files:
        files += folder.rglob("*") if folder.exists() else []
    for path in files:
        if path.is_file():
            places[str(path)] = _readable(path.read_bytes())
    assert len(log_recorder.lines) > 20 and any(p.endswith("friend_ledger.sqlite3") for p in places)
    results = [data for where, data in places.items() if Path(where).is_relative_to(prefect_storage)]
    assert any(b"BatchSummary" in data for data in results), "the scan sees inside the persisted results"
    assert b"friend-requests" in places[str(database)]  # the runs are really in there
    leaks = [
        (where, needle)
        for where, data in places.items()
        for needle in fake_secrets.needles()
        if needle in data
    ]
    assert leaks == []
    cookies = [
        where for where, data in places.items() if b"authcookie_" in data and "vrchat_session" not in where
    ]
    assert cookies == []
