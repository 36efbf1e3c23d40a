"""The steps of the friend-request and group-invite flows (:mod:`flows.domain.steps`) as Prefect tasks.

A task whose request may or may not have reached VRChat (`OutcomeUnknownError`) is tried again; the step
checks the ledger and VRChat before it sends anything twice.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.domain import steps
from flows.domain.batch import BatchSteps
from flows.domain.errors import OutcomeUnknownError

__all__ = [
    "PREFECT_STEPS",
    "accept_friend_request",
    "collect_friend_requests",
    "invite_to_group",
    "reject_friend_request",
    "screen_sender",
    "sign_in",
]


def _outcome_unknown(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry a task only when its last attempt may or may not have taken effect (the step checks first)."""
    return isinstance(state.result(raise_on_failure=False), OutcomeUnknownError)


_RETRIED_WHEN_UNKNOWN: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "retries": 2,
    "retry_delay_seconds": 10,
    "retry_condition_fn": _outcome_unknown,
}
"""A task whose request may or may not have reached VRChat is tried again (it checks before resending)."""

sign_in = task(name="sign-in", cache_policy=NO_CACHE)(steps.sign_in)
collect_friend_requests = task(name="collect-friend-requests", cache_policy=NO_CACHE)(
    steps.collect_friend_requests
)
screen_sender = task(name="screen-sender", cache_policy=NO_CACHE)(steps.screen_sender)
accept_friend_request = task(name="accept-friend-request", **_RETRIED_WHEN_UNKNOWN)(
    steps.accept_friend_request
)
reject_friend_request = task(name="reject-friend-request", cache_policy=NO_CACHE)(steps.reject_friend_request)
invite_to_group = task(name="invite-to-group", **_RETRIED_WHEN_UNKNOWN)(steps.invite_to_group)

PREFECT_STEPS = BatchSteps(
    sign_in=sign_in,
    collect=collect_friend_requests,
    screen=screen_sender,
    accept=accept_friend_request,
    reject=reject_friend_request,
    invite=invite_to_group,
)
