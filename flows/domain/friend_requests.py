"""One pass over the friend requests: collect, screen, accept (rate-limited) or reject, then invite new
friends. The Prefect flow around it is :mod:`flows.orchestration.friend_requests`."""

from __future__ import annotations

import logging

from flows.domain.batch import BatchSteps, FriendRequestBatch
from flows.domain.errors import ItemError, RateLimitedError, VRChatUnavailableError
from flows.domain.group_invites import invite_open_invites
from flows.domain.summary import BatchSummary, summarize

__all__ = ["process_friend_requests"]

log = logging.getLogger(__name__)


def process_friend_requests(batch: FriendRequestBatch, steps: BatchSteps) -> BatchSummary:
    """One pass: finish what an earlier run left open, handle every open request, send the open invites.

    A problem with one request is recorded against it and the batch goes on; after
    `max_consecutive_failures` such problems in a row, or when VRChat rate-limits us, the run stops.
    """
    started = batch.clock.now()
    steps.sign_in(batch)
    failures = 0
    for request in steps.collect(batch):
        try:
            decided = steps.screen(batch, request)
            if decided.state in ("accept_decided", "accepting"):
                steps.accept(batch, decided)
            elif decided.state == "reject_decided":
                steps.reject(batch, decided)
        except RateLimitedError:
            raise
        except (ItemError, VRChatUnavailableError) as exc:
            batch.ledger.note_error(request.notification_id, str(exc), batch.clock.now())
            log.warning("friend request from %s left open: %s", request.sender_id, exc)
            failures += 1
            if failures >= batch.settings.friend_requests.max_consecutive_failures:
                raise VRChatUnavailableError(
                    f"{failures} friend requests failed in a row (the last: {exc}); the run stops, and "
                    "the next run takes up the requests left open"
                ) from None
        else:
            failures = 0
    invite_open_invites(batch, steps)
    return summarize(batch.ledger, started)
