"""The group-invite flow (deployment `group-invites`): send every group invite the ledger still has open,
each exactly once (:func:`flows.domain.group_invites.process_group_invites`, the steps as Prefect tasks)."""

from __future__ import annotations

from prefect import flow

from flows.domain.batch import FriendRequestBatch
from flows.domain.group_invites import process_group_invites
from flows.domain.summary import BatchSummary
from flows.orchestration.scheduled import run_scheduled
from flows.orchestration.tasks import PREFECT_STEPS

__all__ = ["group_invites"]


def _with_prefect_tasks(batch: FriendRequestBatch) -> BatchSummary:
    return process_group_invites(batch, PREFECT_STEPS)


@flow(name="group-invites", persist_result=True)
def group_invites(start_jitter_s: float = 0.0, slot_wait_s: float | None = None) -> BatchSummary:
    """Send the open group invites (those an earlier run could not finish); the parameters are those of
    :func:`flows.orchestration.friend_requests.friend_requests`."""
    return run_scheduled(
        _with_prefect_tasks,
        start_jitter_s,
        key="group-invites",
        title="Group invites",
        slot_wait_s=slot_wait_s,
    )
