"""The composition root of the flows: one run's working set, wired from the settings.

The domain (:mod:`flows.domain`) knows VRChat only through its port; this is the one place that picks the
real gateway (:mod:`flows.vrchat.gateway`) and the configured session store, and opens them together with
the ledger, the screening rules, the rate window and the clock. The Prefect layer
(:mod:`flows.orchestration`) and the command line (`python -m flows`) open their batches here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flows.domain.accept_window import AcceptWindow
from flows.domain.batch import FriendRequestBatch
from flows.domain.clock import Clock, SystemClock
from flows.domain.credentials import VRChatCredentials, read_credentials
from flows.domain.ledger import FriendLedger
from flows.domain.screening import ScreeningRules
from flows.domain.session_store import FileSessionStore, KeyringSessionStore, LoginBlock, SessionStore
from flows.domain.settings import FlowsSettings, note_earlier_files
from flows.vrchat.gateway import VRChatGateway

__all__ = ["login_block", "open_batch", "session_store"]


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
    note_earlier_files(settings)
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
                ledger,
                clock,
                settings.friend_requests.accept_limit,
                settings.friend_requests.accept_window_s,
                in_flight_s=settings.vrchat.connect_timeout_s + settings.vrchat.read_timeout_s,
            ),
            clock=clock,
        )
    finally:
        gateway.close()
        ledger.close()
