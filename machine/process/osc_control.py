"""Forgetting on demand over OSC: what SIGUSR1 does on POSIX, on every platform (Windows has no SIGUSR1).

While a live run holds a memory block, the bot listens for OSC messages (UDP) at `machine.control.host` and
`port` (127.0.0.1:9020 by default: VRChat's own OSC ports are 9000 and 9001, and OSC routers and other
VRChat OSC apps usually take the next few) on a thread of its own, ``osc-control``. A message to
``/companion/forget`` (its arguments are ignored) forgets the conversation as SIGUSR1 does: it only posts
to the runtime's event loop, which forgets once the turn in flight is reset. The sender is answered with
``/companion/forgetting``, so `python -m machine forget` (:func:`ask_to_forget`) can tell a bot that heard
it from no bot at all. With `machine.control.avatar_parameter` set, that avatar parameter turning true (a
button on the player's avatar, as VRChat sends it to ``/avatar/parameters/NAME``) forgets too.

The port is bound when the run is being built, before the models load, so a port in use stops the run at
once with an error naming the setting; serving starts once the runtime exists (:meth:`OscControl.attach`),
and the server is closed before the memory block is (the composition root's reverse order).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
from collections.abc import Callable
from types import TracebackType

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message import OscMessage, ParseError
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import BlockingOSCUDPServer

from companion_settings import ConfigError
from machine.process.stop_signals import Stoppable
from machine.settings import ControlSettings

__all__ = [
    "FORGETTING",
    "FORGET_ADDRESS",
    "ControlPortError",
    "NoBotAnswerError",
    "OscControl",
    "ask_to_forget",
]

log = logging.getLogger(__name__)

FORGET_ADDRESS = "/companion/forget"
"""The OSC address that forgets the conversation."""
FORGETTING = "/companion/forgetting"
"""The answer to a forget: the bot heard it and is forgetting."""
_POLL_S = 0.1
"""How often the serving thread looks whether it should stop (closing waits at most this long)."""
_EVERY_INTERFACE = {"0.0.0.0": "127.0.0.1", "::": "::1"}


class ControlPortError(ConfigError):
    """The control server cannot listen where `machine.control` says (the port in use, a foreign host)."""


class NoBotAnswerError(Exception):
    """No bot answered a forget sent to the control port."""


def _bind_problem(settings: ControlSettings, exc: OSError) -> str:
    where = f"{settings.host}:{settings.port}"
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"machine.control.host: cannot listen for OSC on {where} ({exc.strerror or exc}): it is not an "
            "address of this machine; use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
        )
    return (
        f"machine.control.port: cannot listen for OSC on {where} ({exc.strerror or exc}): another program "
        "(another companion?) listens there, or the system reserves it. Set machine.control.port (or "
        "MACHINE_CONTROL__PORT) to a free port, the same for `python -m machine forget`, or turn forgetting "
        "over OSC off with machine.control.enabled: false"
    )


class OscControl(contextlib.AbstractContextManager["OscControl"]):
    """The control server of one run: bound on entering, serving once attached, closed on exit."""

    def __init__(self, settings: ControlSettings) -> None:
        self._settings = settings
        self._server: BlockingOSCUDPServer | None = None
        self._thread: threading.Thread | None = None
        self._forget: Callable[[], None] | None = None

    def __enter__(self) -> OscControl:
        """Bind the port (raises :class:`ControlPortError` when it cannot be)."""
        dispatcher = Dispatcher()
        dispatcher.map(FORGET_ADDRESS, self._asked)
        if self._settings.avatar_parameter is not None:
            dispatcher.map(f"/avatar/parameters/{self._settings.avatar_parameter}", self._parameter_changed)
        try:
            self._server = BlockingOSCUDPServer((self._settings.host, self._settings.port), dispatcher)
        except OSError as exc:
            raise ControlPortError(_bind_problem(self._settings, exc)) from None
        return self

    @property
    def address(self) -> tuple[str, int]:
        """The host and port listened on (the port the system chose, when the setting is 0)."""
        if self._server is None:
            raise RuntimeError("the control server is not bound: enter it first")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def attach(self, runtime: Stoppable, forget_memory: Callable[[], None]) -> None:
        """Start serving: from now on a forget message runs `forget_memory` through `runtime`'s loop."""
        if self._server is None:
            raise RuntimeError("the control server is not bound: enter it first")

        def forget() -> None:
            runtime.forget(forget_memory)  # only posts: the loop forgets after the turn in flight is reset

        self._forget = forget
        self._thread = threading.Thread(
            name="osc-control", target=self._server.serve_forever, args=(_POLL_S,), daemon=True
        )
        self._thread.start()
        host, port = self.address
        log.info(
            "forgetting on demand: OSC %s on %s:%d (python -m machine forget)", FORGET_ADDRESS, host, port
        )

    def _asked(self, address: str, *arguments: object) -> str | None:
        if self._forget is None:
            return None
        log.info("asked over OSC (%s) to forget the conversation", address)
        self._forget()
        return FORGETTING

    def _parameter_changed(self, address: str, *arguments: object) -> None:
        value = arguments[0] if arguments else None
        if self._forget is None or isinstance(value, str) or not value:
            return  # false, 0, or a value no button sends: nothing to do
        log.info("avatar parameter %s turned on: forgetting the conversation", address)
        self._forget()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = self._forget = None
        if server is None:
            return
        if thread is not None:
            server.shutdown()  # returns once serve_forever has (within _POLL_S)
            thread.join()
        server.server_close()


def ask_to_forget(settings: ControlSettings, timeout_s: float = 2.0) -> tuple[str, int]:
    """Send a forget to the bot listening where `settings` say; returns the address that answered.

    Raises :class:`NoBotAnswerError` (saying why) when nothing listens there or nothing answered in time."""
    host = _EVERY_INTERFACE.get(settings.host, settings.host)
    try:
        found = socket.getaddrinfo(host, settings.port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise NoBotAnswerError(f"machine.control.host: {host} does not resolve ({exc.strerror})") from None
    family, kind, protocol, _, address = min(found, key=lambda entry: entry[0] != socket.AF_INET)
    where = f"{host}:{settings.port}"
    with socket.socket(family, kind, protocol) as sock:
        sock.settimeout(timeout_s)
        sock.connect(address)
        sock.send(OscMessageBuilder(FORGET_ADDRESS).build().dgram)
        try:
            answer = OscMessage(sock.recv(4096))
        except ConnectionError:  # refused (POSIX) or reset (Windows): the port is closed
            raise NoBotAnswerError(
                f"no bot listens on {where} (machine.control): is it running, with this configuration?"
            ) from None
        except TimeoutError:
            raise NoBotAnswerError(
                f"sent {FORGET_ADDRESS} to {where}, but nothing answered within {timeout_s:.0f} s: a bot "
                "still loading its models forgets once it has loaded; otherwise another program has the port"
            ) from None
        except ParseError as exc:  # an answer that is not OSC: another program has the port
            raise NoBotAnswerError(f"{where} answered, but not as the bot does ({exc})") from None
    if answer.address != FORGETTING:
        raise NoBotAnswerError(f"{where} answered {answer.address}, not {FORGETTING}: is that the bot?")
    return host, settings.port
