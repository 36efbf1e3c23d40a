"""A virtual X display (Debian's `xvfb`, installed by `make test`'s setup) and a real window on it showing
a picture (`scene_window.py`), for the vision tests and `bench/vision.py`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent


def _free_display() -> int:
    for number in range(90, 200):
        if not Path(f"/tmp/.X{number}-lock").exists() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return number
    raise RuntimeError("no free X display number between :90 and :199")


@contextmanager
def virtual_display(width: int = 1280, height: int = 720) -> Iterator[str]:
    """Start Xvfb at `width` x `height` (24-bit); yields its DISPLAY (also set in os.environ meanwhile)."""
    if shutil.which("Xvfb") is None:
        raise RuntimeError("Xvfb is missing: `make system-packages` installs Debian's xvfb")
    number = _free_display()
    display = f":{number}"
    server = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    before = os.environ.get("DISPLAY")
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Xvfb {display} did not start")
            time.sleep(0.05)
        os.environ["DISPLAY"] = display
        yield display
    finally:
        if before is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = before
        server.terminate()
        server.wait(timeout=10)


class SceneWindow:
    """A window showing `picture` (a file the caller owns); `show` replaces what it shows."""

    def __init__(self, picture: Path, display: str) -> None:
        self.picture = picture
        self._process = subprocess.Popen(
            [sys.executable, str(HERE / "scene_window.py"), str(picture)],
            env={**os.environ, "DISPLAY": display},
            stdout=subprocess.PIPE,
            text=True,
        )
        self._wait_shown()

    def show(self, image: Image.Image) -> float:
        """Replace the picture and wait until the window shows it; returns the monotonic time it did."""
        partial = self.picture.with_suffix(".new.png")
        image.save(partial)
        partial.replace(self.picture)
        return self._wait_shown()

    def _wait_shown(self) -> float:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("shown"):
            raise RuntimeError("the scene window did not show the picture")
        return time.monotonic()

    def close(self) -> None:
        """Close the window."""
        self._process.terminate()
        self._process.wait(timeout=10)
