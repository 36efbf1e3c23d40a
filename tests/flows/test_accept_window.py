"""The rate window in the ledger: a request counts until `window_s` after its answer came back (VRChat
counts it when it arrives, which is before that), one still in flight as if it arrived now; rows that can
no longer count are deleted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from flows.domain.ledger import FriendLedger

LIMIT, WINDOW, IN_FLIGHT = 10, 60.0, 20.0


@pytest.fixture
def ledger(tmp_path: Path) -> FriendLedger:
    return FriendLedger(tmp_path / "ledger.sqlite3")


def _claim(ledger: FriendLedger, notification: str, now: float) -> float:
    return ledger.claim_accept_slot(notification, now, LIMIT, WINDOW, IN_FLIGHT)


def _fill(ledger: FriendLedger, at: float) -> None:
    for n in range(LIMIT):
        assert _claim(ledger, f"not_{n}", at) == 0.0


def test_an_answered_request_counts_until_a_window_after_its_answer(ledger: FriendLedger) -> None:
    _fill(ledger, at=0.0)
    for n in range(LIMIT):
        ledger.settle_accept_attempts(f"not_{n}", 3.0)  # the answers came 3 s after the requests
    assert _claim(ledger, "late", 62.0) == pytest.approx(1.0)  # counted from the send: room at 60
    assert _claim(ledger, "late", 63.0) == 0.0


def test_a_request_in_flight_counts_until_it_cannot_arrive_any_more(ledger: FriendLedger) -> None:
    _fill(ledger, at=0.0)  # sent, no answer yet (or the run was killed)
    assert 0.0 < _claim(ledger, "next", 61.0) <= 1.0  # asked again soon: the answer may come any moment
    assert _claim(ledger, "next", IN_FLIGHT + WINDOW) == 0.0


def test_a_retry_settles_the_attempt_before_it(ledger: FriendLedger) -> None:
    assert _claim(ledger, "again", 0.0) == 0.0
    assert _claim(ledger, "again", 5.0) == 0.0  # the gateway retries after the first answer (a 500)
    assert ledger.accept_attempts() == [(0.0, 5.0), (5.0, None)]


def test_rows_that_can_no_longer_count_are_deleted(ledger: FriendLedger) -> None:
    for minute in range(30):
        _fill(ledger, at=minute * 100.0)
        for n in range(LIMIT):
            ledger.settle_accept_attempts(f"not_{n}", minute * 100.0 + 1.0)
    assert len(ledger.accept_attempts()) == LIMIT


def test_a_ledger_from_before_answers_were_timed_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE accept_attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, notification_id TEXT NOT "
            "NULL, at REAL NOT NULL)"
        )
        old.execute("INSERT INTO accept_attempts (notification_id, at) VALUES ('old', 100.0)")
    ledger = FriendLedger(path)
    assert ledger.accept_attempts() == [(100.0, None)]
    assert _claim(ledger, "new", 101.0) == 0.0
    ledger.close()
