"""VRChat's pipeline websocket: hearing friend requests as they arrive.

VRChat pushes a `notification` message over its pipeline websocket (`wss://pipeline.vrchat.cloud/
?authToken=…`, receive-only, documented by the community) when a friend request arrives; its `content` is
the notification as a JSON string. The listener reports friend requests in bursts: the first request starts
a `debounce_s` wait, and every request in it joins the same burst, handed to `emit` as one list. What a
burst becomes (a Prefect event that starts a friend-requests run) is in
:mod:`flows.orchestration.pipeline_events`.

The auth token is the session cookie the flows keep; before each connection the listener asks `sign_in`
for a current one (the saved session when VRChat still accepts it, a password login with all its
safeguards otherwise). A dropped connection is reopened after a backoff (doubling from
`reconnect_initial_s` to `reconnect_max_s`, with jitter); an expired token (VRChat sends `{"err": …}` and
closes) is dropped (`forget_session`) and the next connection signs in again. The token never reaches a
log: the URL is logged without it.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from urllib.parse import urlencode

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect
from websockets.sync.connection import Connection

from flows.domain.errors import VRChatError
from flows.domain.settings import FlowsSettings

__all__ = ["PipelineListener", "PipelineSessionError"]

log = logging.getLogger(__name__)


class PipelineSessionError(Exception):
    """VRChat refused the auth token (the session ended)."""


class PipelineListener:
    """Listens until `stop` is set. `sign_in` returns a current auth token (signing in if needed);
    `forget_session` drops a token VRChat refused; `emit` publishes the ids of a burst of requests."""

    def __init__(
        self,
        settings: FlowsSettings,
        sign_in: Callable[[], str],
        forget_session: Callable[[], None],
        emit: Callable[[list[str]], None],
        stop: threading.Event,
    ) -> None:
        self._settings = settings
        self._sign_in = sign_in
        self._forget_session = forget_session
        self._emit = emit
        self._stop = stop
        self._pending: list[str] = []  # ids of the friend requests heard since the burst began
        self._since = 0.0
        self.connections = 0

    def run(self) -> None:
        """Connect, listen, reconnect with backoff, until stopped."""
        listen = self._settings.listen
        backoff = listen.reconnect_initial_s
        while not self._stop.is_set():
            heard = False
            try:
                heard = self._connect_and_listen(self._sign_in())
            except PipelineSessionError as exc:
                log.warning("the pipeline refused the session (%s); signing in again", exc)
                self._forget_session()
            except VRChatError as exc:
                log.warning("pipeline: cannot sign in (%s)", exc)
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
                log.warning("pipeline connection lost (%s)", type(exc).__name__)
            if self._stop.is_set():
                return
            if heard:  # it was connected: start the backoff over
                backoff = listen.reconnect_initial_s
            wait = backoff * random.uniform(0.8, 1.2)
            log.info("reconnecting to the pipeline in %.1f s", wait)
            self._stop.wait(wait)
            backoff = min(backoff * 2, listen.reconnect_max_s)

    def _connect_and_listen(self, token: str) -> bool:
        url = self._settings.vrchat.pipeline_url
        with connect(
            f"{url}?{urlencode({'authToken': token})}",
            user_agent_header=self._settings.vrchat.user_agent,
            open_timeout=self._settings.vrchat.connect_timeout_s,
            proxy=None,
        ) as connection:
            self.connections += 1
            log.info("listening to the VRChat pipeline at %s", url)
            try:
                self._listen(connection)
            finally:
                self._flush()
            return True

    def _listen(self, connection: Connection) -> None:
        debounce = self._settings.listen.debounce_s
        while not self._stop.is_set():
            try:
                raw = connection.recv(timeout=0.2)
            except TimeoutError:
                raw = None
            if raw is not None:
                self._take(raw if isinstance(raw, str) else raw.decode("utf-8", "replace"))
            if self._pending and time.monotonic() - self._since >= debounce:
                self._flush()

    def _take(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("pipeline: a message that is not JSON was skipped")
            return
        if not isinstance(message, dict):
            return
        if "err" in message:
            raise PipelineSessionError(str(message["err"])[:200])
        if message.get("type") != "notification":
            return
        try:
            content = json.loads(message.get("content") or "{}")
        except (TypeError, ValueError):
            log.warning("pipeline: a notification whose content is not JSON was skipped")
            return
        if isinstance(content, dict) and content.get("type") == "friendRequest":
            if not self._pending:
                self._since = time.monotonic()
            self._pending.append(str(content.get("id", "")))

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            log.info("%d friend request(s) arrived; asking for a friend-requests run", len(pending))
            self._emit(pending)
