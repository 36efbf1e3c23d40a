"""What one run works with: the gateway, the ledger, the rules, the rate window and the clock."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from flows.accept_window import AcceptWindow
from flows.clock import Clock, SystemClock
from flows.credentials import VRChatCredentials, read_credentials
from flows.gateway import VRChatGateway
from flows.ledger import FriendLedger
from flows.screening import ScreeningRules
from flows.session_store import FileSessionStore, KeyringSessionStore, LoginBlock, SessionStore
from flows.settings import FlowsSettings, load_settings

T = TypeVar("T")

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


def run_scheduled(work: Callable[[FriendRequestBatch], T], start_jitter_s: float) -> T:
    """What a scheduled flow does around its work: wait a random 0..`start_jitter_s` seconds (VRChat asks
    clients not to poll on fixed clock ticks), then open a batch from the configuration and run `work`."""
    clock = SystemClock()
    clock.sleep(random.uniform(0.0, start_jitter_s))
    with open_batch(load_settings(), clock) as batch:
        return work(batch)
