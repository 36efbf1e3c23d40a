"""Where the bot looks on screen, and grabbing it with mss (Windows, X11 and macOS alike).

The target is the whole monitor (mss's number: 1 is the primary screen), a fixed region, or a window found
by its title: on Windows through user32 (EnumWindows, GetWindowTextW, GetWindowRect), on X11 through
`xwininfo` (Debian's x11-utils). A window is looked up again every few seconds, so it may move.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time

import mss
import numpy as np

from companion_settings import ConfigError
from machine.ports import Frame
from machine.settings import VisionSettings

__all__ = ["Screen", "ScreenError", "window_rect"]

Rect = tuple[int, int, int, int]
"""left, top, width, height in screen pixels."""

WINDOW_LOOKUP_S = 3.0
"""A window named by title is looked up again this often (it may have moved or been resized)."""


class ScreenError(ConfigError):
    """What the settings point at cannot be seen; the message says why and what to set instead."""


def window_rect(title: str) -> Rect:
    """The screen rectangle of the visible window whose title contains `title` (case-insensitive)."""
    if sys.platform == "win32":
        return _windows_window_rect(title)
    return _x11_window_rect(title)


if sys.platform == "win32":  # type checkers see user32 only where it exists

    def _windows_window_rect(title: str) -> Rect:
        import ctypes
        from ctypes import wintypes

        user32 = ctypes.windll.user32
        found: list[Rect] = []
        wanted = title.lower()

        def visit(hwnd: int, _: int) -> bool:
            length = user32.GetWindowTextLengthW(hwnd)
            if length and user32.IsWindowVisible(hwnd):
                buffer = ctypes.create_unicode_buffer(length + 1)
                user32.GetWindowTextW(hwnd, buffer, length + 1)
                rect = wintypes.RECT()
                if wanted in buffer.value.lower() and user32.GetWindowRect(hwnd, ctypes.byref(rect)):
                    found.append((rect.left, rect.top, rect.right - rect.left, rect.bottom - rect.top))
            return not found

        callback = ctypes.WINFUNCTYPE(ctypes.c_bool, wintypes.HWND, wintypes.LPARAM)(visit)
        user32.EnumWindows(callback, 0)
        if not found:
            raise ScreenError(
                f"machine.vision.window: no visible window's title contains {title!r}; start VRChat"
            )
        return found[0]


def _x11_window_rect(title: str) -> Rect:
    if shutil.which("xwininfo") is None:
        raise ScreenError(
            "machine.vision.window needs `xwininfo` (Debian: apt install x11-utils) on Linux; "
            "or set machine.vision.region to [left, top, width, height]"
        )
    tree = subprocess.run(
        ["xwininfo", "-root", "-tree"], check=False, capture_output=True, text=True, timeout=5
    )
    wanted = title.lower()
    for line in tree.stdout.splitlines():
        match = re.match(r'\s*(0x[0-9a-f]+) "([^"]*)"', line)
        if match and wanted in match.group(2).lower():
            info = subprocess.run(
                ["xwininfo", "-id", match.group(1)], check=False, capture_output=True, text=True, timeout=5
            )
            fields = dict(re.findall(r"^\s*([A-Za-z -]+):\s+(-?\d+)\s*$", info.stdout, re.MULTILINE))
            try:
                return (
                    int(fields["Absolute upper-left X"]),
                    int(fields["Absolute upper-left Y"]),
                    int(fields["Width"]),
                    int(fields["Height"]),
                )
            except KeyError:
                continue
    raise ScreenError(f"machine.vision.window: no window's title contains {title!r}; start VRChat")


class Screen:
    """Grabs what the settings point at. Use from one thread (mss keeps per-thread handles)."""

    def __init__(self, settings: VisionSettings) -> None:
        self._settings = settings
        try:
            self._mss = mss.MSS()
        except mss.ScreenShotError as exc:
            raise ScreenError(
                f"machine.vision: the screen cannot be read ({exc}); on Linux the bot needs an X display "
                "(DISPLAY set; Wayland: XWayland), or set machine.vision.enabled: false"
            ) from None
        self._window: Rect | None = None
        self._looked_up = float("-inf")
        monitors = self._mss.monitors
        if settings.window is None and settings.region is None and settings.monitor >= len(monitors):
            self.close()
            raise ScreenError(
                f"machine.vision.monitor: there is no monitor {settings.monitor} (this display has "
                f"{len(monitors) - 1}: 1 to {len(monitors) - 1}, or 0 for all of them)"
            )
        self.target()  # a window that is not there fails now, before the models load

    def target(self) -> Rect:
        """The rectangle grabbed now."""
        settings = self._settings
        if settings.region is not None:
            return settings.region
        if settings.window is not None:
            now = time.monotonic()
            if self._window is None or now - self._looked_up >= WINDOW_LOOKUP_S:
                self._window, self._looked_up = window_rect(settings.window), now
            return self._window
        monitor = self._mss.monitors[settings.monitor]
        return int(monitor["left"]), int(monitor["top"]), int(monitor["width"]), int(monitor["height"])

    def grab(self) -> Frame:
        """One frame of the target, as RGB pixels in memory."""
        left, top, width, height = self.target()
        shot = self._mss.grab({"left": left, "top": top, "width": width, "height": height})
        pixels = np.frombuffer(shot.bgra, dtype=np.uint8).reshape(shot.height, shot.width, 4)
        return Frame(np.ascontiguousarray(pixels[:, :, 2::-1]), time.monotonic())

    def close(self) -> None:
        """Release the display handles."""
        self._mss.close()
