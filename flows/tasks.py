"""The steps of the friend-request and group-invite flows, as small typed Prefect tasks.

Each step reads where things stand in the ledger, writes its intent before it talks to VRChat and its
outcome after, so running it again (a task retry, or the next run after a crash) finishes the work instead
of repeating it. `PREFECT_STEPS` are the tasks; `PLAIN_STEPS` the same functions without Prefect, for the
tests that drive hundreds of runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.batch import FriendRequestBatch
from flows.errors import OutcomeUnknownError, RequestRejectedError
from flows.gateway import SignIn
from flows.ledger import OPEN_INVITE_STATES, InviteRow, InviteState, RequestRow

__all__ = [
    "PLAIN_STEPS",
    "PREFECT_STEPS",
    "BatchSteps",
    "accept_friend_request",
    "collect_friend_requests",
    "invite_to_group",
    "reject_friend_request",
    "screen_sender",
    "sign_in",
]

log = logging.getLogger(__name__)

_DONE_MEMBERSHIP: dict[str, InviteState] = {"member": "already_member", "invited": "already_invited"}
_REFUSED_MEMBERSHIP = ("banned", "userblocked")


def _outcome_unknown(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry a task only when its last attempt may or may not have taken effect (the step checks first)."""
    return isinstance(state.result(raise_on_failure=False), OutcomeUnknownError)


@task(name="sign-in", cache_policy=NO_CACHE)
def sign_in(batch: FriendRequestBatch) -> SignIn:
    """Reuse the saved VRChat session or log in."""
    return batch.gateway.sign_in()


@task(name="collect-friend-requests", cache_policy=NO_CACHE)
def collect_friend_requests(batch: FriendRequestBatch) -> list[RequestRow]:
    """Record the pending friend requests in the ledger; returns every request not finished yet."""
    limit = batch.settings.friend_requests.max_requests_per_run
    notices, unreadable = batch.gateway.friend_requests(limit)
    new = batch.ledger.record_received(notices, batch.clock.now())
    if unreadable:
        log.warning("%d friend request notification(s) could not be read and were skipped", unreadable)
    open_requests = batch.ledger.open_requests()[:limit]
    log.info("%d friend request(s) pending at VRChat, %d new, %d open", len(notices), new, len(open_requests))
    return open_requests


_RETRIED_WHEN_UNKNOWN: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "retries": 2,
    "retry_delay_seconds": 10,
    "retry_condition_fn": _outcome_unknown,
}
"""A task whose request may or may not have reached VRChat is tried again (it checks before resending)."""


@task(name="screen-sender", cache_policy=NO_CACHE)
def screen_sender(batch: FriendRequestBatch, request: RequestRow) -> RequestRow:
    """Check the sender against the rules and record the decision (once)."""
    if request.state != "received":
        return request
    profile = batch.gateway.sender(request.sender_id)
    today = datetime.fromtimestamp(batch.clock.now(), timezone.utc).date()
    verdict = batch.rules.judge(profile, today)
    return batch.ledger.decide(
        request.notification_id, verdict.accept, profile.display_name, verdict.explanation, batch.clock.now()
    )


@task(name="accept-friend-request", **_RETRIED_WHEN_UNKNOWN)
def accept_friend_request(batch: FriendRequestBatch, request: RequestRow) -> RequestRow:
    """Accept (each attempt waits for room in the rate window and is counted in it), and queue the new
    friend's group invite."""
    notification_id = request.notification_id
    batch.ledger.begin_accept(notification_id, batch.clock.now())
    accepted = batch.gateway.accept(notification_id, lambda: batch.window.take_slot(notification_id))
    if not accepted:  # VRChat no longer has the request: accepted before a crash, or withdrawn
        accepted = batch.gateway.sender(request.sender_id).is_friend
    return batch.ledger.finish_accept(
        request.notification_id, accepted, batch.settings.group.group_id, batch.clock.now()
    )


@task(name="reject-friend-request", cache_policy=NO_CACHE)
def reject_friend_request(batch: FriendRequestBatch, request: RequestRow) -> RequestRow:
    """Hide the rejected request or leave it, as configured, and record it."""
    hide = batch.settings.friend_requests.rejected_action == "hide"
    if hide:
        batch.gateway.hide(request.notification_id)
    return batch.ledger.finish_reject(
        request.notification_id, "hidden" if hide else "left", batch.clock.now()
    )


@task(name="invite-to-group", **_RETRIED_WHEN_UNKNOWN)
def invite_to_group(batch: FriendRequestBatch, invite: InviteRow) -> InviteRow:
    """Invite one friend to the group, exactly once.

    An invite left "sending" (the last attempt crashed or timed out) is first looked up at VRChat: one that
    landed is recorded as done and never sent again.
    """
    ledger, gateway = batch.ledger, batch.gateway
    group_id, user_id = invite.group_id, invite.user_id
    current = ledger.invite(group_id, user_id)
    if current.state not in OPEN_INVITE_STATES:
        return current
    if current.state == "sending":
        status = gateway.membership(group_id, user_id)
        if status in _DONE_MEMBERSHIP:
            return ledger.finish_invite(
                group_id,
                user_id,
                _DONE_MEMBERSHIP[status],
                "found after an interrupted invite",
                batch.clock.now(),
            )
        if status in _REFUSED_MEMBERSHIP:
            return ledger.finish_invite(
                group_id, user_id, "failed", f"membership is {status}", batch.clock.now()
            )
    ledger.begin_invite(group_id, user_id, batch.clock.now())
    try:
        answer = gateway.invite(group_id, user_id, batch.settings.group.confirm_override_block)
    except RequestRejectedError as exc:
        if exc.status != 403:
            raise
        return ledger.finish_invite(group_id, user_id, "failed", str(exc), batch.clock.now())
    return ledger.finish_invite(group_id, user_id, answer, "", batch.clock.now())


@dataclass(frozen=True)
class BatchSteps:
    """The steps a flow runs: the Prefect tasks, or the same functions called directly."""

    sign_in: Callable[[FriendRequestBatch], SignIn]
    collect: Callable[[FriendRequestBatch], list[RequestRow]]
    screen: Callable[[FriendRequestBatch, RequestRow], RequestRow]
    accept: Callable[[FriendRequestBatch, RequestRow], RequestRow]
    reject: Callable[[FriendRequestBatch, RequestRow], RequestRow]
    invite: Callable[[FriendRequestBatch, InviteRow], InviteRow]


PREFECT_STEPS = BatchSteps(
    sign_in=sign_in,
    collect=collect_friend_requests,
    screen=screen_sender,
    accept=accept_friend_request,
    reject=reject_friend_request,
    invite=invite_to_group,
)
PLAIN_STEPS = BatchSteps(
    sign_in=sign_in.fn,
    collect=collect_friend_requests.fn,
    screen=screen_sender.fn,
    accept=accept_friend_request.fn,
    reject=reject_friend_request.fn,
    invite=invite_to_group.fn,
)
