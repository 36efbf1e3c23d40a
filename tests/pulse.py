"""Real audio devices for tests: a PulseAudio server and null sinks made on demand."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from machine.shared.levels import dbfs


def ensure_server() -> None:
    """Start PulseAudio (per user, never idle-exiting) unless one answers already."""
    if subprocess.run(["pactl", "info"], capture_output=True, check=False).returncode == 0:
        return
    subprocess.run(["pulseaudio", "--start", "--exit-idle-time=-1"], capture_output=True, check=False)
    deadline = time.monotonic() + 10
    while subprocess.run(["pactl", "info"], capture_output=True, check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("PulseAudio did not start; is the pulseaudio package installed?")
        time.sleep(0.2)


def load_null_sink(name: str, rate: int = 16_000) -> str:
    """Create a null sink (its monitor is a source); returns the module id."""
    return subprocess.run(
        ["pactl", "load-module", "module-null-sink", f"sink_name={name}", f"rate={rate}", "channels=1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def unload(module: str) -> None:
    subprocess.run(["pactl", "unload-module", module], capture_output=True, check=False)


@contextmanager
def null_sinks(*roles: str) -> Iterator[dict[str, str]]:
    """Null sinks with unique names, one per role, removed afterwards."""
    names = {role: f"{role}_{uuid.uuid4().hex[:8]}" for role in roles}
    modules = [load_null_sink(name) for name in names.values()]
    try:
        yield names
    finally:
        for module in modules:
            unload(module)


def play(sink: str, wav: Path, volume: float = 1.0) -> None:
    """Play a WAV into a sink (volume 1.0 = as recorded) and wait until it has been played."""
    level = f"--volume={round(65536 * volume)}"
    subprocess.run(["paplay", f"--device={sink}", level, str(wav)], check=True, timeout=60)


@contextmanager
def recording(source: str, wav: Path) -> Iterator[None]:
    """Record a source into a WAV while the block runs."""
    process = subprocess.Popen(
        ["parecord", f"--device={source}", "--file-format=wav", "--rate=16000", "--channels=1", str(wav)]
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


class LevelMeter:
    """The level of a source every 20 ms, read live with parec (monotonic time, dBFS)."""

    def __init__(self, source: str) -> None:
        self._process = subprocess.Popen(
            [
                "parec",
                f"--device={source}",
                "--format=float32le",
                "--rate=16000",
                "--channels=1",
                "--latency-msec=20",
            ],
            stdout=subprocess.PIPE,
        )
        self.levels: list[tuple[float, float]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        while data := self._process.stdout.read(320 * 4):
            self.levels.append((time.monotonic(), dbfs(np.frombuffer(data, dtype=np.float32))))

    def _last(self, seconds: float) -> list[float] | None:
        """The levels of the last `seconds`, or None while fewer have been read."""
        count = round(seconds / 0.02)
        recent = [level for _, level in self.levels[-count:]]
        return recent if len(recent) == count else None

    def loud_for(self, seconds: float, db: float = -45.0) -> bool:
        """Whether the last `seconds` were all louder than `db`."""
        recent = self._last(seconds)
        return recent is not None and min(recent) > db

    def quiet_for(self, seconds: float, db: float = -60.0) -> bool:
        """Whether the last `seconds` were all quieter than `db`."""
        recent = self._last(seconds)
        return recent is not None and max(recent) < db

    def wait(self, condition: Callable[[], bool], timeout: float) -> None:
        """Wait until `condition` holds (AssertionError after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "the level never got there"
            time.sleep(0.01)

    def close(self) -> None:
        """Stop reading."""
        self._process.terminate()
        self._process.wait(timeout=5)


@contextmanager
def loopback(source: str, sink: str, latency_ms: int) -> Iterator[None]:
    """What `source` hears is played into `sink` `latency_ms` later (an echo path), while the block runs."""
    module = subprocess.run(
        [
            "pactl",
            "load-module",
            "module-loopback",
            f"source={source}",
            f"sink={sink}",
            f"latency_msec={latency_ms}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        yield
    finally:
        unload(module)
