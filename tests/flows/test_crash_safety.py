"""Crash safety: a batch killed at 50 random points, then restarted, loses no request and invites each new
friend exactly once. The batch runs in a real child process that dies by os._exit at a step chosen at
random (seeded; the seed is printed) among all wire requests and ledger writes of a batch."""

from __future__ import annotations

import multiprocessing
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import crash_worker
import pytest
from flow_harness import SCREENING, FakeClock, FakeSecrets, populate, run_batch, settings_for, totp_fake

from flows.domain.ledger import FriendLedger

CRASHES = 50
SEED = int(os.environ.get("CRASH_SEED", "20260101"))


@pytest.fixture
def ledger_folder(tmp_path: Path) -> Iterator[Path]:
    """In memory (/dev/shm) where there is one: a process kill does not depend on fsync, and 100 ledgers'
    fsyncs would otherwise dominate the test's time."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm) as folder:
        yield Path(folder)


@pytest.mark.slow  # kills fifty processes
@pytest.mark.posix
def test_fifty_crashes_lose_nothing_and_invite_nobody_twice(
    ledger_folder: Path, fake_secrets: FakeSecrets
) -> None:
    rng = random.Random(SEED)
    print(f"crash points drawn with seed {SEED} (set CRASH_SEED to replay another)")
    clock = FakeClock()
    with totp_fake(fake_secrets, clock) as fake:
        populate(fake, valid=4, abusive=2)
        total_steps = crash_worker.count_steps(
            settings_for(fake, ledger_folder / "count", screening=SCREENING), clock, fake_secrets
        )
    assert total_steps > 60

    context = multiprocessing.get_context("forkserver")
    # The fork server imports the heavy modules once; each child then starts in milliseconds.
    context.set_forkserver_preload(
        ["flows.composition", "flows.domain.friend_requests", "flows.domain.steps", "pytest"]
    )
    crashed_at = []
    for attempt in range(CRASHES):
        crash_at = rng.randint(1, total_steps - 1)
        clock = FakeClock()
        with totp_fake(fake_secrets, clock) as fake:
            world = populate(fake, valid=4, abusive=2)
            settings = settings_for(fake, ledger_folder / f"crash{attempt}", screening=SCREENING)
            child = context.Process(
                target=crash_worker.run_and_crash, args=(settings, clock.now(), fake_secrets, crash_at)
            )
            child.start()
            child.join(timeout=60)
            assert child.exitcode == crash_worker.CRASH_EXIT, f"step {crash_at}: child ended {child.exitcode}"
            crashed_at.append(crash_at)

            clock.t += 3600.0
            run_batch(settings, clock, fake_secrets)  # the restart

            valid = {user.id for user in world.valid}
            abusive = {user.id for user in world.abusive}
            where = f"crash at step {crash_at} of {total_steps} (seed {SEED})"
            assert fake.friends == valid, where
            assert dict(fake.invite_posts) == dict.fromkeys(valid, 1), where
            assert fake.pending_friend_requests() == [], where
            ledger = FriendLedger(settings.ledger_path)
            states = {row.sender_id: row.state for row in ledger.all_requests()}
            assert states == {**dict.fromkeys(valid, "accepted"), **dict.fromkeys(abusive, "rejected")}, where
            invites = {i.user_id: i.state for i in ledger.all_invites()}
            assert invites.keys() == valid and set(invites.values()) <= {"invited", "already_invited"}, where
            ledger.close()
    print(f"crashed at steps {sorted(crashed_at)}")
    written = [path.read_bytes() for path in ledger_folder.rglob("*") if path.is_file()]
    assert written and not [needle for data in written for needle in fake_secrets.needles() if needle in data]
