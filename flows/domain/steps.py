"""The steps of the friend-request and group-invite runs, as plain functions.

Each step reads where things stand in the ledger, writes its intent before it talks to VRChat and its
outcome after, so running it again (a task retry, or the next run after a crash) finishes the work instead
of repeating it. `PLAIN_STEPS` calls them directly (the tests that drive hundreds of runs);
:mod:`flows.orchestration.tasks` wraps the same functions as Prefect tasks.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from flows.domain.batch import BatchSteps, FriendRequestBatch
from flows.domain.errors import RequestRejectedError
from flows.domain.ledger import OPEN_INVITE_STATES, InviteRow, InviteState, RequestRow
from flows.domain.profiles import SignIn

__all__ = [
    "PLAIN_STEPS",
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


def sign_in(batch: FriendRequestBatch) -> SignIn:
    """Reuse the saved VRChat session or log in."""
    return batch.gateway.sign_in()


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


def accept_friend_request(batch: FriendRequestBatch, request: RequestRow) -> RequestRow:
    """Accept (each attempt waits for room in the rate window and is counted in it until its answer is
    back), and queue the new friend's group invite."""
    notification_id = request.notification_id
    batch.ledger.begin_accept(notification_id, batch.clock.now())
    try:
        accepted = batch.gateway.accept(notification_id, lambda: batch.window.take_slot(notification_id))
    finally:
        batch.window.settle(notification_id)
    if not accepted:  # VRChat no longer has the request: accepted before a crash, or withdrawn
        accepted = batch.gateway.sender(request.sender_id).is_friend
    return batch.ledger.finish_accept(
        request.notification_id, accepted, batch.settings.group.group_id, batch.clock.now()
    )


def reject_friend_request(batch: FriendRequestBatch, request: RequestRow) -> RequestRow:
    """Hide the rejected request or leave it, as configured, and record it."""
    hide = batch.settings.friend_requests.rejected_action == "hide"
    if hide:
        batch.gateway.hide(request.notification_id)
    return batch.ledger.finish_reject(
        request.notification_id, "hidden" if hide else "left", batch.clock.now()
    )


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


PLAIN_STEPS = BatchSteps(
    sign_in=sign_in,
    collect=collect_friend_requests,
    screen=screen_sender,
    accept=accept_friend_request,
    reject=reject_friend_request,
    invite=invite_to_group,
)
