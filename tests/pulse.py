"""Real audio devices for tests: a PulseAudio server and null sinks made on demand."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
