"""The group-invite flow: send every group invite the ledger still has open, each exactly once."""

from __future__ import annotations

import logging

from prefect import flow

from flows.batch import FriendRequestBatch, run_scheduled
from flows.errors import ItemError
from flows.run_summary import BatchSummary, summarize
from flows.tasks import PREFECT_STEPS, BatchSteps

__all__ = ["group_invites", "invite_open_invites", "process_group_invites"]

log = logging.getLogger("flows.group_invites")  # fixed: a served run loads this file under another name


def invite_open_invites(batch: FriendRequestBatch, steps: BatchSteps = PREFECT_STEPS) -> None:
    """Invite every friend whose group invite is open; one that fails stays open for the next run."""
    group_id = batch.settings.group.group_id
    if group_id is None:
        return
    for invite in batch.ledger.open_invites(group_id):
        try:
            steps.invite(batch, invite)
        except ItemError as exc:
            log.warning("group invite of %s left open: %s", invite.user_id, exc)


def process_group_invites(batch: FriendRequestBatch, steps: BatchSteps = PREFECT_STEPS) -> BatchSummary:
    """Sign in and send the open invites."""
    started = batch.clock.now()
    steps.sign_in(batch)
    invite_open_invites(batch, steps)
    return summarize(batch.ledger, started)


@flow(name="group-invites", persist_result=True)
def group_invites(start_jitter_s: float = 0.0) -> BatchSummary:
    """Send the open group invites (those an earlier run could not finish)."""
    return run_scheduled(process_group_invites, start_jitter_s, key="group-invites", title="Group invites")
