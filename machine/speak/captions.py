"""Captions of what the bot says, in the VRChat chatbox over OSC, for players who read instead of listen.

VRChat takes OSC on UDP port 9000 once OSC is on (action menu: Options → OSC → Enabled).
``/chatbox/input`` takes the text, True (send it at once instead of opening the keyboard) and whether to
play the notification sound; ``/chatbox/typing`` turns the typing indicator on or off. One message holds at
most 144 characters and 9 lines (https://docs.vrchat.com/docs/osc-as-input-controller), so a long sentence
is cut into pages at word boundaries, and its pages are shown one after another while it plays.

Pacing: VRChat times a chatbox out for a while when messages come too fast. Its developer update of
11 August 2022 advised one update every 1.5 s (https://ask.vrchat.com/t/developer-update-11-august-2022/12286);
OSC tool authors report that client 2026.2.1 replaced that with a leaky bucket of about five messages per
five seconds that refills about one a second. The default `min_interval_s` of 1.5 s keeps under both, and
the setting cannot go below 1 s. Only text counts: typing-indicator changes are sent as they happen.

When speech outruns the pacing, pages that are due together are merged into as few messages as fit (so
short sentences are never lost), and at most `max_pending_pages` wait: beyond that the oldest unshown pages
are dropped, because a caption far behind the voice helps nobody.

Captions are best effort and never hold up the conversation: no method blocks or raises, one background
thread does the sending, and a failing send is logged (once per run of failures) while the bot talks on.
A host that does not resolve is a configuration error at start (:meth:`ChatboxCaptions.from_settings`).
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from pythonosc.udp_client import SimpleUDPClient

from companion_settings import ConfigError
from machine.settings import CaptionSettings

log = logging.getLogger(__name__)

MAX_CHARS = 144
"""Longest chatbox message, counted as VRChat (C#) counts: in UTF-16 units."""

MAX_LINES = 9
"""Most lines one chatbox message shows."""

INPUT_ADDRESS = "/chatbox/input"
TYPING_ADDRESS = "/chatbox/typing"

_Message = tuple[str, list[str | bool]]
"""An OSC address and its arguments."""


def paginate(text: str) -> list[str]:
    """Cut `text` into chatbox pages of at most :data:`MAX_CHARS` characters and :data:`MAX_LINES` lines.

    Pages break between words; blanks collapse to one space and line breaks are kept (blank lines are
    dropped). Only a word longer than a page is cut, into page-sized pieces. Joining the pages with spaces
    gives the words back in order."""
    pages: list[str] = []
    page, lines = "", 1
    for line in text.splitlines():
        for index, word in enumerate(line.split()):
            separator = "\n" if index == 0 else " "
            for piece in _pieces(word):
                joined = f"{page}{separator}{piece}" if page else piece
                new_lines = lines + (1 if page and separator == "\n" else 0)
                if page and (_units(joined) > MAX_CHARS or new_lines > MAX_LINES):
                    pages.append(page)
                    page, lines = piece, 1
                else:
                    page, lines = joined, new_lines
    if page:
        pages.append(page)
    return pages


def _units(text: str) -> int:
    """Length in UTF-16 units: a character outside the Basic Multilingual Plane (an emoji) counts twice."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _pieces(word: str) -> Iterator[str]:
    """The word, or page-sized pieces of it when it is longer than a page."""
    piece, units = "", 0
    for char in word:
        size = _units(char)
        if units + size > MAX_CHARS:
            yield piece
            piece, units = "", 0
        piece, units = piece + char, units + size
    yield piece


@dataclass(frozen=True)
class _Page:
    due: float
    """Monotonic time at which its words are being spoken."""
    text: str


class ChatboxCaptions:
    """Shows the bot's speech in the VRChat chatbox, page by page in step with its voice (see the module).

    Implements :class:`machine.ports.Captions`: every method only updates shared state and wakes the
    sender thread, so the runtime's audio and turn threads are never held up."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        min_interval_s: float = 1.5,
        notify_sound: bool = False,
        typing_indicator: bool = True,
        max_pending_pages: int = 16,
    ) -> None:
        """Send to VRChat's OSC input at `host`:`port`; raises OSError when `host` does not resolve."""
        found = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        # VRChat listens on IPv4: "localhost" must not become ::1
        family, _, _, _, address = min(found, key=lambda entry: entry[0] != socket.AF_INET)
        self._client = SimpleUDPClient(str(address[0]), port, family=family)
        self._target = f"{host}:{port}"
        self._min_interval_s = min_interval_s
        self._notify_sound = notify_sound
        self._typing_indicator = typing_indicator
        self._wake = threading.Condition()
        self._pages: deque[_Page] = deque(maxlen=max_pending_pages)
        self._typing_wanted = False
        self._typing_shown = False
        self._last_text_at = -math.inf
        self._closed = False
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="chatbox-captions", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: CaptionSettings) -> ChatboxCaptions:
        """Captions as configured in `machine.captions`; a host that does not resolve is a ConfigError."""
        try:
            return cls(
                settings.host,
                settings.port,
                min_interval_s=settings.min_interval_s,
                notify_sound=settings.notify_sound,
                typing_indicator=settings.typing_indicator,
            )
        except OSError as exc:
            raise ConfigError(
                f"machine.captions.host: cannot resolve {settings.host!r} ({exc}); name the machine VRChat "
                "runs on (127.0.0.1 when it is this one), or set machine.captions.enabled to false"
            ) from None

    def thinking(self) -> None:
        """The bot is working out a reply: the typing indicator goes on (when configured)."""
        with self._wake:
            self._typing_wanted = self._typing_indicator
            self._wake.notify()

    def saying(self, sentence: str, duration_s: float) -> None:
        """`sentence` starts playing now for `duration_s` seconds: its pages are spread evenly across that
        time (each still at least `min_interval_s` after the message before), and the indicator goes off."""
        pages = paginate(sentence)
        now = time.monotonic()
        step = duration_s / len(pages) if pages and math.isfinite(duration_s) and duration_s > 0 else 0.0
        with self._wake:
            dropped = max(0, len(self._pages) + len(pages) - (self._pages.maxlen or 0))
            self._pages.extend(_Page(now + index * step, text) for index, text in enumerate(pages))
            self._typing_wanted = False
            self._wake.notify()
        if dropped:
            log.info("chatbox captions: speech is ahead of the chatbox, %d unshown pages dropped", dropped)

    def idle(self) -> None:
        """The bot stopped thinking or speaking: the indicator goes off and pages whose words were not
        spoken (an interrupted reply) are dropped; pages already spoken but held back by the pacing are
        still shown."""
        now = time.monotonic()
        with self._wake:
            spoken = [page for page in self._pages if page.due <= now]
            self._pages.clear()
            self._pages.extend(spoken)
            self._typing_wanted = False
            self._wake.notify()

    def close(self) -> None:
        """Drop what is not shown, turn the indicator off, stop the sender and close the socket."""
        with self._wake:
            if self._closed:
                return
            self._closed = True
            self._pages.clear()
            self._typing_wanted = False
            self._wake.notify()
        self._thread.join(timeout=2.0)
        self._client.close()

    def _run(self) -> None:
        while True:
            with self._wake:
                message, wait_s = self._take(time.monotonic())
                while message is None:
                    if self._closed:
                        return
                    self._wake.wait(wait_s)
                    message, wait_s = self._take(time.monotonic())
            self._send(*message)

    def _take(self, now: float) -> tuple[_Message | None, float | None]:
        """The message to send now, or None and how long to wait for the next one (None: until woken)."""
        if self._typing_wanted != self._typing_shown:
            self._typing_shown = self._typing_wanted
            return (TYPING_ADDRESS, [self._typing_shown]), None
        if not self._pages:
            return None, None
        ready_at = max(self._pages[0].due, self._last_text_at + self._min_interval_s)
        if now < ready_at:
            return None, ready_at - now
        due: list[str] = []
        while self._pages and self._pages[0].due <= now:
            due.append(self._pages.popleft().text)
        first, *rest = paginate(" ".join(due))  # pages due together share as few messages as fit
        self._pages.extendleft(_Page(now, text) for text in reversed(rest))
        self._last_text_at = now  # a failed send counts too: failing never speeds the pace up
        return (INPUT_ADDRESS, [first, True, self._notify_sound]), None

    def _send(self, address: str, arguments: list[str | bool]) -> None:
        try:
            self._client.send_message(address, arguments)
        except Exception as exc:  # a caption is never worth stopping the conversation for
            if not self._failing:
                log.warning(
                    "chatbox captions: cannot send to %s (%s); the conversation goes on without them",
                    self._target,
                    exc,
                )
            self._failing = True
        else:
            if self._failing:
                log.info("chatbox captions: sending to %s again", self._target)
            self._failing = False
