"""The capture thread: grabs a frame `fps` times a second into a one-frame slot, where the reader takes the
latest one; a frame not taken before the next is dropped (counted). Frames stay in memory only."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from machine.ports import Frame

log = logging.getLogger(__name__)

RETRY_S = 2.0
"""After a failed grab (the window closed, the display went away), the next try waits this long."""


class LatestFrame:
    """A slot holding the newest frame: `put` replaces what was not taken, `take` waits for a new one."""

    def __init__(self) -> None:
        self._frame: Frame | None = None
        self._new = threading.Condition()
        self.dropped = 0
        """Frames replaced before the reader took them."""

    def put(self, frame: Frame) -> None:
        """Offer the newest frame (never blocks)."""
        with self._new:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._new.notify()

    def take(self, timeout: float) -> Frame | None:
        """The newest frame not taken yet, waiting up to `timeout` seconds for one (None: none came)."""
        with self._new:
            if self._frame is None:
                self._new.wait(timeout)
            frame, self._frame = self._frame, None
            return frame


class Grabber(Protocol):
    """Something that grabs frames (:class:`machine.vision.screen.Screen`), used from one thread."""

    def grab(self) -> Frame:
        """One frame."""
        ...

    def close(self) -> None:
        """Release what it holds."""
        ...


class FrameCapture:
    """Opens a grabber on its own thread (screen handles belong to the thread that opened them) and grabs
    `fps` frames a second into `slot` until stopped."""

    def __init__(self, open_grabber: Callable[[], Grabber], fps: float, slot: LatestFrame) -> None:
        self._open = open_grabber
        self._period = 1.0 / fps
        self._slot = slot
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vision-capture", daemon=True)
        self.failures = 0
        self.cpu_s = 0.0
        """CPU seconds this thread has spent (grabbing), updated after each frame."""

    def start(self) -> FrameCapture:
        """Start grabbing."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop grabbing (within one frame period)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        grabber: Grabber | None = None
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.cpu_s = time.thread_time()
            try:
                grabber = grabber or self._open()
                self._slot.put(grabber.grab())
            except Exception as exc:  # the window closed, the display went away: keep trying
                self.failures += 1
                if self.failures == 1 or self.failures % 100 == 0:
                    log.warning("the screen could not be grabbed (%s); trying again", exc)
                if grabber is not None:
                    grabber.close()
                    grabber = None
                self._stop.wait(RETRY_S)
                next_at = time.monotonic()
                continue
            next_at += self._period
            self._stop.wait(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at, time.monotonic() - self._period)  # fell behind: no catching up in a burst
        if grabber is not None:
            grabber.close()
