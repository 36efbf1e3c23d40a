"""Runs one friend-request batch in a child process that dies (os._exit) at a chosen step.

A step is either side of every wire request (before it is sent, after its answer arrived) and either side
of every ledger write (before the transaction, after the commit). `count_steps` runs a batch in-process
and counts them, so the test can pick crash points among all of them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import urllib3
from flow_harness import FakeClock, FakeSecrets, run_batch

from flows.domain.ledger import FriendLedger
from flows.domain.settings import FlowsSettings

CRASH_EXIT = 86
_LEDGER_WRITES = (
    "record_received",
    "decide",
    "begin_accept",
    "finish_accept",
    "finish_reject",
    "note_error",
    "begin_invite",
    "finish_invite",
)


class _Steps:
    def __init__(self, crash_at: int | None) -> None:
        self.count = 0
        self.crash_at = crash_at

    def tick(self) -> None:
        self.count += 1
        if self.count == self.crash_at:
            os._exit(CRASH_EXIT)  # no cleanup, no flush: like a kill -9

    def around(self, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.tick()
            result = function(*args, **kwargs)
            self.tick()
            return result

        return wrapper


def _instrument(steps: _Steps) -> Callable[[], None]:
    originals: dict[tuple[Any, str], Any] = {(urllib3.PoolManager, "urlopen"): urllib3.PoolManager.urlopen}
    originals.update({(FriendLedger, name): getattr(FriendLedger, name) for name in _LEDGER_WRITES})
    for (owner, name), function in originals.items():
        setattr(owner, name, steps.around(function))

    def restore() -> None:
        for (owner, name), function in originals.items():
            setattr(owner, name, function)

    return restore


def count_steps(settings: FlowsSettings, clock: FakeClock, secrets: FakeSecrets) -> int:
    """Run a whole batch in this process and count its steps."""
    steps = _Steps(crash_at=None)
    restore = _instrument(steps)
    try:
        run_batch(settings, clock, secrets)
    finally:
        restore()
    return steps.count


def run_and_crash(settings: FlowsSettings, start: float, secrets: FakeSecrets, crash_at: int) -> None:
    """The child process: run a batch and die at step `crash_at` (exit 0 when the batch ends first)."""
    _instrument(_Steps(crash_at))
    run_batch(settings, FakeClock(start), secrets)
