"""The bot's eyes: the capture thread and the reader worker, and what they saw (:class:`machine.ports.Sight`).

The reader takes the latest frame (older ones were dropped by the capture slot), finds what changed since
the frame it last read (:mod:`machine.vision.changes`), and reads only there: each changed region, grown to
hold the whole lines it touches, goes to the text reader; the lines read replace those known there. The
known lines are laid out into chatbox bubbles and nameplates (:mod:`machine.vision.layout`), and the
bubbles followed into messages (:mod:`machine.vision.chatbox`), handed to `on_message`.

Reading waits while the bot works out a reply (transcribing, thinking: `busy`), and the reader thread
runs at a lower priority: the voice comes first (bench/vision.py measures voice-to-voice with and without
the eyes). Reading draws on a CPU budget (:class:`CpuBudget`) that refills at `max_core_share`
of one core, and grabbing is paid from it too: on average the eyes take no more, yet a burst (a whole
frame) is read at once. Frames, crops and the text of bubbles are kept in memory only, for the session;
nothing is written.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from PIL import Image

from machine.ports import ChatboxMessage, Frame, TextLine, TextReader
from machine.settings import VisionSettings
from machine.vision.capture import FrameCapture, Grabber, LatestFrame
from machine.vision.changes import Box, brightness, changed_regions, grown, overlaps, union
from machine.vision.chatbox import ChatboxTracker
from machine.vision.layout import Layout, lay_out

__all__ = ["Eyes", "ReadText"]

log = logging.getLogger(__name__)

MARGIN_PX = 12
"""A region is read with this much around it (the detector needs a little background around text)."""
TICK_S = 0.25
"""With no new frame, bubbles still settle: the reader looks at the time this often."""
READER_NICE = 10
"""How much nicer the reader thread is than the process on Linux and macOS (at most 19, the lowest): the
voice pipeline goes first."""
BURST_CPU_S = 1.0
"""The most CPU seconds the budget holds: a whole 1280x720 frame (about 1.2 s on a 2-core VM) is read
when it is full, and the next waits until the budget is back above zero."""


def lower_this_threads_priority() -> None:
    """Let the voice pipeline go first: the calling thread (and the OCR it runs on itself, with one
    thread) gets a lower scheduling priority (nice 10 on Linux and macOS, below normal on Windows)."""
    try:
        if sys.platform == "win32":
            import ctypes

            kernel32 = ctypes.windll.kernel32
            kernel32.SetThreadPriority(kernel32.GetCurrentThread(), -1)  # THREAD_PRIORITY_BELOW_NORMAL
        else:
            thread = threading.get_native_id()
            os.setpriority(
                os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + READER_NICE)
            )
    except (OSError, AttributeError) as exc:  # not allowed here: reading goes on at normal priority
        log.info("the reader's priority was not lowered (%s)", exc)


class CpuBudget:
    """CPU seconds that refill at `share` a second up to `burst`; work goes ahead while some are left."""

    def __init__(self, share: float, burst: float = BURST_CPU_S) -> None:
        self._share = share
        self._burst = burst
        self._left = burst
        self._at: float | None = None

    def allows(self, now: float) -> bool:
        """Whether there is budget left at monotonic time `now` (refilled since the last call)."""
        if self._at is not None:
            self._left = min(self._burst, self._left + (now - self._at) * self._share)
        self._at = now
        return self._left > 0

    def spend(self, cpu_s: float) -> None:
        """Take what the work cost (the budget may go below zero: the next work waits for it)."""
        self._left -= cpu_s


class ReadText:
    """The lines of text known on screen, kept up to date region by region."""

    def __init__(self, reader: TextReader) -> None:
        self._reader = reader
        self.lines: list[TextLine] = []

    def reread(self, pixels: npt.NDArray[np.uint8], regions: list[Box]) -> None:
        """Read `regions` of `pixels` again: the lines known there are replaced by what is read now."""
        height, width = pixels.shape[:2]
        for region in regions:
            area = self._whole_lines(grown(region, MARGIN_PX, width, height))
            left, top, right, bottom = area
            found = self._reader.read(np.ascontiguousarray(pixels[top:bottom, left:right]))
            self.lines = [line for line in self.lines if not overlaps(line.box, area)]
            self.lines += [
                TextLine(
                    line.text,
                    (line.box[0] + left, line.box[1] + top, line.box[2] + left, line.box[3] + top),
                    line.score,
                )
                for line in found
            ]

    def _whole_lines(self, area: Box) -> Box:
        """`area` grown until every known line it touches lies inside it."""
        while True:
            touched = [line.box for line in self.lines if overlaps(line.box, area)]
            bigger = area
            for box in touched:
                bigger = union(bigger, box)
            if bigger == area:
                return area
            area = bigger

    def forget(self) -> None:
        """Drop every line known."""
        self.lines = []


class Eyes:
    """Watches the screen: start it, hand it to those who need to know who is around, stop it at the end."""

    def __init__(
        self,
        settings: VisionSettings,
        open_grabber: Callable[[], Grabber],
        reader: TextReader,
    ) -> None:
        self._settings = settings
        self._slot = LatestFrame()
        self._capture = FrameCapture(open_grabber, settings.fps, self._slot)
        self._text = ReadText(reader)
        self._chatbox = ChatboxTracker(settings.settle_s)
        self._on_message: Callable[[ChatboxMessage], None] = lambda message: None
        self._busy: Callable[[], bool] = lambda: False
        self._lock = threading.Lock()
        self._latest: Frame | None = None
        self._seen: dict[str, float] = {}
        self._layout = Layout()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, name="vision-reader", daemon=True)
        self.frames_read = 0
        """Frames in which something changed and was read."""
        self.read_cpu_s = 0.0
        """CPU seconds the reader spent reading (its own thread)."""

    def start(
        self, on_message: Callable[[ChatboxMessage], None], busy: Callable[[], bool] = lambda: False
    ) -> Eyes:
        """Start capturing and reading; each chatbox message that settles goes to `on_message`. While
        `busy()` (the bot is working out a reply) nothing is read: frames are still grabbed, and what
        changed meanwhile is read once the bot is free."""
        self._on_message = on_message
        self._busy = busy
        self._capture.start()
        self._worker.start()
        return self

    def stop(self) -> None:
        """Stop both threads (when started); what was seen is dropped."""
        self._stop.set()
        if self._worker.is_alive():
            self._capture.stop()
            self._worker.join(timeout=10)
        self.forget()

    def present(self) -> list[str]:
        """Display names seen on nameplates within `present_s`, most recently seen first."""
        now = time.monotonic()
        with self._lock:
            recent = [(at, name) for name, at in self._seen.items() if now - at <= self._settings.present_s]
        return [name for _, name in sorted(recent, reverse=True)]

    def latest(self) -> Frame | None:
        """The latest frame the reader took."""
        with self._lock:
            return self._latest

    def snapshot(self, max_side: int) -> bytes | None:
        """The latest frame as a JPEG at most `max_side` pixels a side, made in memory (None: no frame)."""
        frame = self.latest()
        if frame is None:
            return None
        image = Image.fromarray(frame.pixels)
        image.thumbnail((max_side, max_side))
        encoded = io.BytesIO()
        image.save(encoded, format="JPEG", quality=85)
        return encoded.getvalue()

    def forget(self) -> None:
        """The session ended: who was seen and the bubbles followed are dropped."""
        with self._lock:
            self._seen.clear()
            self._chatbox.forget()

    def _run(self) -> None:
        lower_this_threads_priority()
        before: npt.NDArray[np.int16] | None = None
        budget = CpuBudget(self._settings.max_core_share)
        grabbing = 0.0
        while not self._stop.is_set():
            frame = self._slot.take(TICK_S)
            now = time.monotonic()
            try:
                if frame is not None:
                    with self._lock:
                        self._latest = frame
                    if not self._busy() and budget.allows(now):
                        started = time.thread_time()
                        current = brightness(frame.pixels)
                        regions = changed_regions(before, current)
                        if regions:
                            self._text.reread(frame.pixels, regions)
                            self._layout = lay_out(frame.pixels, self._text.lines)
                            self.frames_read += 1
                        before = current
                        spent = time.thread_time() - started
                        self.read_cpu_s += spent
                        grabbed = self._capture.cpu_s
                        budget.spend(spent + grabbed - grabbing)
                        grabbing = grabbed
                self._look(now)
            except Exception:
                log.exception("reading the screen failed; the next frame is read afresh")
                before = None

    def _look(self, now: float) -> None:
        """Note who is in view and hand on the messages that settled."""
        with self._lock:
            for plate in self._layout.nameplates:
                self._seen[plate.name] = now
            keep_s = self._settings.present_s
            self._seen = {name: at for name, at in self._seen.items() if now - at <= keep_s}
            messages = self._chatbox.update(self._layout.bubbles, now)
        for message in messages:
            self._on_message(message)
