"""What one run works with: the gateway, the ledger, the rules, the rate window and the clock."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flows.accept_window import AcceptWindow
from flows.clock import Clock, SystemClock
from flows.credentials import VRChatCredentials, read_credentials
from flows.errors import VRChatError
from flows.exclusive import social_slot
from flows.gateway import VRChatGateway
from flows.ledger import FriendLedger
from flows.run_summary import BatchSummary, publish_summary, summarize
from flows.screening import ScreeningRules
from flows.session_store import FileSessionStore, KeyringSessionStore, LoginBlock, SessionStore
from flows.settings import FlowsSettings, load_settings

__all__ = ["FriendRequestBatch", "login_block", "open_batch", "run_scheduled", "session_store"]


@dataclass(frozen=True)
class FriendRequestBatch:
    """The working set of one run; the tasks take it as their first argument."""

    settings: FlowsSettings
    gateway: VRChatGateway
    ledger: FriendLedger
    rules: ScreeningRules
    window: AcceptWindow
    clock: Clock


def session_store(settings: FlowsSettings) -> SessionStore:
    """The configured place for the session cookies."""
    if settings.vrchat.cookie_store == "keyring":
        return KeyringSessionStore()
    return FileSessionStore(settings.cookie_path)


def login_block(settings: FlowsSettings) -> LoginBlock:
    """The file that stops password logins after one failed for good."""
    return LoginBlock(settings.data_dir / "login_blocked.json")


@contextmanager
def open_batch(
    settings: FlowsSettings,
    clock: Clock | None = None,
    credentials: Callable[[], VRChatCredentials | None] = read_credentials,
) -> Iterator[FriendRequestBatch]:
    """Open the ledger and a gateway (not signed in yet); both are closed on the way out."""
    logging.getLogger("flows").setLevel(settings.log_level)
    clock = clock or SystemClock()
    ledger = FriendLedger(settings.ledger_path)
    gateway = VRChatGateway(
        settings.vrchat,
        store=session_store(settings),
        login_block=login_block(settings),
        credentials=credentials,
        clock=clock,
    )
    try:
        yield FriendRequestBatch(
            settings=settings,
            gateway=gateway,
            ledger=ledger,
            rules=ScreeningRules(settings.screening),
            window=AcceptWindow(
                ledger, clock, settings.friend_requests.accept_limit, settings.friend_requests.accept_window_s
            ),
            clock=clock,
        )
    finally:
        gateway.close()
        ledger.close()


def run_scheduled(
    work: Callable[[FriendRequestBatch], BatchSummary], start_jitter_s: float, key: str, title: str
) -> BatchSummary:
    """What a scheduled flow does around its work: wait a random 0..`start_jitter_s` seconds (VRChat asks
    clients not to poll on fixed clock ticks), take the social runs' one slot (:mod:`flows.exclusive`),
    open a batch from the configuration, run `work`, and publish its summary (artifact `key`). A run that
    stops early (VRChat unavailable, failures in a row, a login problem) publishes what it did and why it
    stopped before the error ends it; a run that finds another one working skips and says so."""
    clock = SystemClock()
    clock.sleep(random.uniform(0.0, start_jitter_s))
    settings = load_settings()
    with social_slot(settings.busy_wait_s) as held:
        if not held:
            skipped = BatchSummary(
                {}, (), (), outcome="skipped: another friend-requests or group-invites run was working"
            )
            publish_summary(skipped, key, title)
            return skipped
        with open_batch(settings, clock) as batch:
            started = clock.now()
            try:
                summary = work(batch)
            except VRChatError as exc:
                publish_summary(summarize(batch.ledger, started, f"stopped: {exc}"), key, title)
                raise
            publish_summary(summary, key, title)
            return summary
