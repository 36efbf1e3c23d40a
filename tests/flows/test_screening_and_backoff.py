"""The screening rules and the backoff policy, as pure functions."""

from __future__ import annotations

import random
from datetime import date

from flows.domain.backoff import BackoffPolicy, parse_retry_after
from flows.domain.profiles import SenderProfile
from flows.domain.screening import ScreeningRules
from flows.domain.settings import ScreeningSettings

TODAY = date(2026, 1, 1)
ALICE = "usr_c1644b5b-3ca4-45b4-97c6-a2a0de70d469"


def _sender(**changes: object) -> SenderProfile:
    values: dict[str, object] = {
        "user_id": ALICE,
        "display_name": "Alice",
        "date_joined": date(2024, 1, 1),
        "tags": ("system_trust_basic",),
        "is_friend": False,
    }
    values.update(changes)
    return SenderProfile(**values)  # type: ignore[arg-type]


def test_a_good_sender_passes() -> None:
    assert ScreeningRules(ScreeningSettings()).judge(_sender(), TODAY).accept


def test_every_failed_rule_is_a_reason() -> None:
    verdict = ScreeningRules(ScreeningSettings(blocked_name_patterns=("(?i)free ?robux",))).judge(
        _sender(display_name="FREE robux", date_joined=date(2025, 12, 25), tags=("system_probable_troll",)),
        TODAY,
    )
    assert not verdict.accept
    assert len(verdict.reasons) == 4  # troll tag, 7 days old, no trust tag, name pattern


def test_the_blocklist_beats_the_allowlist_which_beats_the_rest() -> None:
    troll = _sender(tags=("system_probable_troll",))
    assert ScreeningRules(ScreeningSettings(allowlist=(ALICE,))).judge(troll, TODAY).accept
    both = ScreeningSettings(allowlist=(ALICE,), blocklist=(ALICE,))
    assert ScreeningRules(both).judge(_sender(), TODAY).reasons == ("on the blocklist",)


def test_an_unknown_age_is_rejected() -> None:
    assert not ScreeningRules(ScreeningSettings()).judge(_sender(date_joined=None), TODAY).accept


def test_backoff_doubles_up_to_the_cap_and_stops_after_the_attempts() -> None:
    policy = BackoffPolicy(max_attempts=6, base_s=2.0, max_s=10.0, jitter=0.0)
    rng = random.Random(0)
    assert [policy.delay(n, None, rng) for n in range(1, 7)] == [2.0, 4.0, 8.0, 10.0, 10.0, None]


def test_jitter_spreads_the_wait_within_its_bounds() -> None:
    policy = BackoffPolicy(max_attempts=3, base_s=10.0, max_s=100.0, jitter=0.25)
    waits = {policy.delay(1, None, random.Random(seed)) for seed in range(50)}
    assert len(waits) > 40 and all(7.5 <= wait <= 12.5 for wait in waits if wait is not None)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    assert parse_retry_after("30", now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now) == 60.0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None
    policy = BackoffPolicy(max_attempts=3, base_s=1.0, max_s=60.0, jitter=0.5)
    assert policy.delay(1, 45.0, random.Random(0)) == 45.0  # taken as is, no jitter
    assert policy.delay(1, 61.0, random.Random(0)) is None  # longer than allowed: stop
