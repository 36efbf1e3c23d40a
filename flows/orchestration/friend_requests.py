"""The friend-request flow (deployment `friend-requests`): one pass of
:func:`flows.domain.friend_requests.process_friend_requests` with the steps as Prefect tasks."""

from __future__ import annotations

from prefect import flow

from flows.domain.batch import FriendRequestBatch
from flows.domain.friend_requests import process_friend_requests
from flows.domain.summary import BatchSummary
from flows.orchestration.scheduled import run_scheduled
from flows.orchestration.tasks import PREFECT_STEPS

__all__ = ["friend_requests"]


def _with_prefect_tasks(batch: FriendRequestBatch) -> BatchSummary:
    return process_friend_requests(batch, PREFECT_STEPS)


@flow(name="friend-requests", persist_result=True)
def friend_requests(start_jitter_s: float = 0.0, slot_wait_s: float | None = None) -> BatchSummary:
    """Process the bot's pending VRChat friend requests (the scheduled deployment).

    `start_jitter_s`: wait a random 0..N seconds first, so runs do not hit VRChat on fixed clock ticks.
    `slot_wait_s`: how long to wait for another social run to finish (default `flows.busy_wait_s`; a
    follow-up run after a skip waits longer, see :mod:`flows.orchestration.follow_up`).
    """
    return run_scheduled(
        _with_prefect_tasks,
        start_jitter_s,
        key="friend-requests",
        title="Friend requests",
        slot_wait_s=slot_wait_s,
    )
