"""The friend-request flow's logic on a batch of 35 against the fake VRChat, with an injected clock."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from fake_vrchat import FakeVRChat, Fault
from flow_harness import GROUP_ID, SCREENING, FakeClock, FakeSecrets, populate, run_batch, settings_for

from flows.domain.errors import VRChatUnavailableError
from flows.domain.ledger import FriendLedger


def _max_in_any_window(times: list[float], window: float) -> int:
    return max((sum(1 for t in times if start - window < t <= start) for start in times), default=0)


@pytest.mark.parametrize("rejected_action", ["hide", "leave"])
def test_batch_of_35_accepts_the_right_ones_rate_limited_and_invites_each_once(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets, rejected_action: str
) -> None:
    world = populate(fake, valid=23, abusive=12)
    settings = settings_for(
        fake, data_dir, screening=SCREENING, friend_requests={"rejected_action": rejected_action}
    )

    summary = run_batch(settings, clock, fake_secrets)

    valid_ids = {user.id for user in world.valid}
    abusive_ids = {user.id for user in world.abusive}
    assert fake.friends == valid_ids
    assert _max_in_any_window(fake.accept_times, 60.0) == 10
    assert fake.count("PUT", r"/auth/user/notifications/.*/accept") == 23
    assert clock.now() - fake.accept_times[0] >= 120.0  # 23 accepts need three windows
    assert {user: count for user, count in fake.invite_posts.items()} == dict.fromkeys(valid_ids, 1)
    assert {user for user, status in fake.group_status.items() if status == "invited"} == valid_ids
    remaining = {n["senderUserId"] for n in fake.pending_friend_requests()}
    assert remaining == (set() if rejected_action == "hide" else abusive_ids)

    ledger = FriendLedger(settings.ledger_path)
    rows = {row.sender_id: row for row in ledger.all_requests()}
    assert {sender for sender, row in rows.items() if row.state == "accepted"} == valid_ids
    assert {sender for sender, row in rows.items() if row.state == "rejected"} == abusive_ids
    assert all(rows[sender].reasons and rows[sender].display_name for sender in rows)
    assert {invite.user_id for invite in ledger.all_invites() if invite.state == "invited"} == valid_ids
    assert summary.counts["accepted"] == 23 and summary.counts["rejected"] == 12
    assert summary.counts["invite_invited"] == 23
    ledger.close()


def test_rejection_reasons_name_the_rule(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets
) -> None:
    world = populate(fake, valid=1, abusive=4)
    run_batch(settings_for(fake, data_dir, screening=SCREENING), clock, fake_secrets)
    ledger = FriendLedger(data_dir / "friend_ledger.sqlite3")
    reasons = {row.sender_id: row.reasons for row in ledger.all_requests()}
    troll, visitor, spam, fresh = (user.id for user in world.abusive)
    assert "system_probable_troll" in reasons[troll]
    assert "3 days old" in reasons[fresh]
    assert "required tags" in reasons[visitor]
    assert "blocked pattern" in reasons[spam]
    ledger.close()


def test_the_rate_window_survives_a_restart(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets
) -> None:
    settings = settings_for(fake, data_dir, friend_requests={"max_requests_per_run": 10})
    populate(fake, valid=14, abusive=0)
    run_batch(settings, clock, fake_secrets)  # 10 accepts, no waiting
    assert len(fake.accept_times) == 10 and clock.sleeps == []
    clock.t += 5.0
    run_batch(settings, clock, fake_secrets)  # a new process: same ledger, window still full
    assert len(fake.accept_times) == 14
    assert fake.accept_times[10] >= fake.accept_times[0] + 60.0
    assert _max_in_any_window(fake.accept_times, 60.0) == 10


def test_a_request_slow_on_its_way_does_not_put_an_eleventh_in_vrchats_window(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets
) -> None:
    """VRChat counts an accept when it arrives: the first one arrives 2 s after it was sent, so the
    eleventh may not go until 60 s after that arrival (counted from when it was sent, eleven arrived
    within 58 s)."""
    fake.sleep = clock.sleep  # the delay moves the injected clock, as the wire would
    fake.inject(Fault("PUT", r"/auth/user/notifications/.*/accept", "late", delay_s=2.0))
    populate(fake, valid=11, abusive=0)

    run_batch(settings_for(fake, data_dir), clock, fake_secrets)

    assert len(fake.accept_times) == 11
    assert _max_in_any_window(fake.accept_times, 60.0) == 10
    assert fake.accept_times[10] >= fake.accept_times[0] + 60.0


ACCEPT = r"/auth/user/notifications/.*/accept"


def test_every_accept_request_on_the_wire_counts_retries_and_restarts_included(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets
) -> None:
    """A 429 (Retry-After: 30) and a run of 500s on accepts: every accept request that reaches VRChat,
    each retry too, counts in the persisted window, so no 60 s ever sees more than 10 on the wire, also
    across the restarts that follow the runs stopped by failures in a row."""
    world = populate(fake, valid=25, abusive=0)
    fake.inject(Fault("PUT", ACCEPT, "429", retry_after="30"))
    fake.inject(Fault("PUT", ACCEPT, "500", times=9))
    fake.inject(Fault("PUT", ACCEPT, "429", times=2, retry_after="1"))
    fake.inject(Fault("PUT", ACCEPT, "500", times=8))
    settings = settings_for(fake, data_dir, friend_requests={"max_consecutive_failures": 2})

    runs = 0
    while fake.friends != {user.id for user in world.valid} and runs < 10:
        runs += 1
        with contextlib.suppress(VRChatUnavailableError):  # two failures in a row stop a run
            run_batch(settings, clock, fake_secrets)
        clock.t += 5.0  # the next run starts a moment later, in a new process

    on_the_wire = [r.at for r in fake.requests if r.method == "PUT" and re.fullmatch(ACCEPT, r.path)]
    assert fake.friends == {user.id for user in world.valid} and runs >= 2
    assert len(on_the_wire) == 25 + 1 + 9 + 2 + 8  # every fault was a request VRChat saw
    assert _max_in_any_window(on_the_wire, 60.0) <= 10
    assert on_the_wire[1] >= on_the_wire[0] + 30.0, "VRChat's Retry-After is honoured"


def test_the_batch_goes_on_past_bad_items_and_finishes_them_next_run(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets
) -> None:
    world = populate(fake, valid=6, abusive=0)
    broken, flaky, slow = world.valid[0].id, world.valid[1].id, world.valid[2].id
    fake.inject(Fault("GET", f"/users/{broken}", "missing_fields"))
    fake.inject(Fault("GET", f"/users/{flaky}", "500", times=2))
    fake.inject(Fault("GET", f"/users/{slow}", "hang"))
    fake.inject(Fault("GET", "/auth/user/notifications", "429", retry_after="7"))
    settings = settings_for(fake, data_dir)

    run_batch(settings, clock, fake_secrets)

    assert fake.friends == {user.id for user in world.valid} - {broken}
    assert 7.0 in clock.sleeps  # Retry-After honoured
    assert fake.count("GET", f"/users/{flaky}") == 3  # two 500s, then the answer
    assert fake.count("GET", f"/users/{slow}") == 2  # one timeout, then the answer
    ledger = FriendLedger(settings.ledger_path)
    left = [row for row in ledger.open_requests()]
    assert [row.sender_id for row in left] == [broken] and "unreadable profile" in left[0].last_error

    run_batch(settings, clock, fake_secrets)  # the fault is gone: the request is finished, not lost
    assert fake.friends == {user.id for user in world.valid}
    assert ledger.open_requests() == []
    assert fake.invite_posts[broken] == 1
    ledger.close()


def test_invites_already_done_count_as_done(
    fake: FakeVRChat, clock: FakeClock, data_dir: Path, fake_secrets: FakeSecrets
) -> None:
    world = populate(fake, valid=3, abusive=0)
    member, invited, refused = (user.id for user in world.valid)
    fake.group_status[member] = "member"
    fake.group_status[invited] = "invited"
    fake.blocked_from_group.add(refused)

    run_batch(settings_for(fake, data_dir), clock, fake_secrets)

    ledger = FriendLedger(data_dir / "friend_ledger.sqlite3")
    states = {invite.user_id: invite.state for invite in ledger.all_invites()}
    assert states == {member: "already_member", invited: "already_invited", refused: "failed"}
    assert ledger.open_invites(GROUP_ID) == []
    ledger.close()
