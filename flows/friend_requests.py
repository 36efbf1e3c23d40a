"""The friend-request flow: collect, screen, accept (rate-limited) or reject, then invite new friends."""

from __future__ import annotations

import logging

from prefect import flow

from flows.batch import FriendRequestBatch, run_scheduled
from flows.errors import ItemError, RateLimitedError, VRChatUnavailableError
from flows.group_invites import invite_open_invites
from flows.run_summary import BatchSummary, summarize
from flows.tasks import PREFECT_STEPS, BatchSteps

__all__ = ["friend_requests", "process_friend_requests"]

log = logging.getLogger("flows.friend_requests")  # fixed: a served run loads this file under another name


def process_friend_requests(batch: FriendRequestBatch, steps: BatchSteps = PREFECT_STEPS) -> BatchSummary:
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


@flow(name="friend-requests", persist_result=True)
def friend_requests(start_jitter_s: float = 0.0) -> BatchSummary:
    """Process the bot's pending VRChat friend requests (the scheduled deployment).

    `start_jitter_s`: wait a random 0..N seconds first, so runs do not hit VRChat on fixed clock ticks.
    """
    return run_scheduled(
        process_friend_requests, start_jitter_s, key="friend-requests", title="Friend requests"
    )
