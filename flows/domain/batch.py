"""What one run works with (`FriendRequestBatch`), and the steps a run is made of (`BatchSteps`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flows.domain.accept_window import AcceptWindow
from flows.domain.clock import Clock
from flows.domain.ledger import FriendLedger, InviteRow, RequestRow
from flows.domain.port import VRChatPort
from flows.domain.profiles import SignIn
from flows.domain.screening import ScreeningRules
from flows.domain.settings import FlowsSettings

__all__ = ["BatchSteps", "FriendRequestBatch"]


@dataclass(frozen=True)
class FriendRequestBatch:
    """The working set of one run; the steps take it as their first argument."""

    settings: FlowsSettings
    gateway: VRChatPort
    ledger: FriendLedger
    rules: ScreeningRules
    window: AcceptWindow
    clock: Clock


@dataclass(frozen=True)
class BatchSteps:
    """The steps a run makes: the plain functions (:data:`flows.domain.steps.PLAIN_STEPS`), or the same
    functions as Prefect tasks (:data:`flows.orchestration.tasks.PREFECT_STEPS`)."""

    sign_in: Callable[[FriendRequestBatch], SignIn]
    collect: Callable[[FriendRequestBatch], list[RequestRow]]
    screen: Callable[[FriendRequestBatch, RequestRow], RequestRow]
    accept: Callable[[FriendRequestBatch, RequestRow], RequestRow]
    reject: Callable[[FriendRequestBatch, RequestRow], RequestRow]
    invite: Callable[[FriendRequestBatch, InviteRow], InviteRow]
