"""The process's stop and forget signals for one run: installed when the run opens, restored when it closes.

While the run is being built (models loading), SIGTERM (and Ctrl-Break on Windows) raises `SystemExit` in
the main thread and Ctrl-C raises `KeyboardInterrupt`, so whatever was opened closes in reverse (the
memory block's session is forgotten, the store closed). Once the runtime is attached, the handlers only
post to its event queue, which is async-signal-safe (`queue.SimpleQueue.put` is reentrant): Ctrl-C,
Ctrl-Break and SIGTERM stop it, SIGUSR1 (POSIX only) forgets the conversation. Every handler that was
there before is put back on exit, for every signal touched. Where there is no SIGUSR1 (Windows), only the
stop signals are handled; forgetting on demand is an OSC message there (:mod:`machine.process.osc_control`),
on every platform. The loop waits on its queue with a 0.2 s timeout, so a handler runs within that even on
Windows, where a blocked lock wait is not interrupted by Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Protocol

__all__ = ["StopSignals", "Stoppable"]

_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class Stoppable(Protocol):
    """What the signals act on once attached (the runtime)."""

    def stop(self) -> None:
        """End the run (from a signal handler: must only post)."""
        ...

    def forget(self, forget_memory: Callable[[], None]) -> None:
        """Forget the conversation once the turn in flight has stopped (must only post)."""
        ...


def _stop_signals() -> list[int]:
    """Ctrl-C, SIGTERM, and Ctrl-Break where there is one (Windows)."""
    names = ("SIGINT", "SIGTERM", "SIGBREAK")
    return [getattr(signal, name) for name in names if hasattr(signal, name)]


def _forget_signal() -> int | None:
    return getattr(signal, "SIGUSR1", None)  # POSIX only


class StopSignals(contextlib.AbstractContextManager["StopSignals"]):
    """Signal handling for one run (a no-op outside the main thread, where Python allows no handlers)."""

    def __init__(self) -> None:
        self._saved: dict[int, _Handler] = {}
        self.asked_at: float | None = None
        """When a stop was first asked for (monotonic), by a signal or :meth:`stop_when_set`."""

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        numbers = [*_stop_signals(), _forget_signal()]
        self._saved = {number: signal.getsignal(number) for number in numbers if number is not None}

        def unwind(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        for number in _stop_signals():
            if number != signal.SIGINT:  # Ctrl-C already raises KeyboardInterrupt
                signal.signal(number, unwind)
        return self

    def attach(self, runtime: Stoppable, forget_memory: Callable[[], None] | None) -> None:
        """From now on a stop signal stops `runtime`, and SIGUSR1 runs `forget_memory` through it."""

        def stop(signum: int, frame: FrameType | None) -> None:
            if self.asked_at is None:
                self.asked_at = time.monotonic()
            runtime.stop()

        def forget(signum: int, frame: FrameType | None) -> None:
            if forget_memory is not None:
                runtime.forget(forget_memory)  # through the loop: after the turn in flight is reset

        if not self._saved:
            return
        for number in _stop_signals():
            signal.signal(number, stop)
        forget_signal = _forget_signal()
        if forget_signal is not None:
            signal.signal(forget_signal, forget)

    def stop_when_set(self, runtime: Stoppable, stop: threading.Event) -> None:
        """Stop `runtime` when `stop` is set (from a thread of its own, for embedding and tests)."""

        def wait() -> None:
            stop.wait()
            if self.asked_at is None:
                self.asked_at = time.monotonic()
            runtime.stop()

        threading.Thread(target=wait, name="stop-when-set", daemon=True).start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for number, handler in self._saved.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        self._saved = {}
