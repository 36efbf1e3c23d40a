"""Sending every group invite the ledger still has open, each exactly once. The Prefect flow around it is
:mod:`flows.orchestration.group_invites`."""

from __future__ import annotations

import logging

from flows.domain.batch import BatchSteps, FriendRequestBatch
from flows.domain.errors import ItemError
from flows.domain.summary import BatchSummary, summarize

__all__ = ["invite_open_invites", "process_group_invites"]

log = logging.getLogger(__name__)


def invite_open_invites(batch: FriendRequestBatch, steps: BatchSteps) -> None:
    """Invite every friend whose group invite is open; one that fails stays open for the next run."""
    group_id = batch.settings.group.group_id
    if group_id is None:
        return
    for invite in batch.ledger.open_invites(group_id):
        try:
            steps.invite(batch, invite)
        except ItemError as exc:
            log.warning("group invite of %s left open: %s", invite.user_id, exc)


def process_group_invites(batch: FriendRequestBatch, steps: BatchSteps) -> BatchSummary:
    """Sign in and send the open invites."""
    started = batch.clock.now()
    steps.sign_in(batch)
    invite_open_invites(batch, steps)
    return summarize(batch.ledger, started)
