"""Where the bot looks on screen, and grabbing it with mss (Windows, X11 and macOS alike).

The target is the whole monitor (mss's number: 1 is the primary screen), a fixed region, or a window found
by its title: on Windows through user32 (EnumWindows, GetWindowTextW, and the client area, without borders
and title bar), on X11 through `xwininfo` (Debian's x11-utils). A window titled exactly so wins over one
whose title only contains it (a console titled with a path holding "vrchat"), and the bot's own console is
never taken. A window is looked up again every few seconds, so it may move.
"""

from __future__ import annotations

import contextlib
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


def best_match(title: str, windows: list[tuple[str, Rect]]) -> Rect | None:
    """The window titled exactly `title` (case-insensitive), else the first whose title contains it: a
    console whose title is a path with "vrchat" in it must not win over VRChat's own window."""
    wanted = title.lower()
    exact = [rect for name, rect in windows if name.strip().lower() == wanted]
    containing = [rect for name, rect in windows if wanted in name.lower()]
    chosen = exact or containing
    return chosen[0] if chosen else None


if sys.platform == "win32":  # type checkers see user32 only where it exists

    def _windows_window_rect(title: str) -> Rect:
        """The client area (what the game draws, without borders and title bar) on screen."""
        import ctypes
        from ctypes import wintypes

        user32 = ctypes.windll.user32
        own_console = ctypes.windll.kernel32.GetConsoleWindow()
        windows: list[tuple[str, Rect]] = []

        def visit(hwnd: int, _: int) -> bool:
            length = user32.GetWindowTextLengthW(hwnd)
            if length and hwnd != own_console and user32.IsWindowVisible(hwnd):
                buffer = ctypes.create_unicode_buffer(length + 1)
                user32.GetWindowTextW(hwnd, buffer, length + 1)
                client, corner = wintypes.RECT(), wintypes.POINT(0, 0)
                if user32.GetClientRect(hwnd, ctypes.byref(client)) and user32.ClientToScreen(
                    hwnd, ctypes.byref(corner)
                ):
                    windows.append((buffer.value, (corner.x, corner.y, client.right, client.bottom)))
            return True

        callback = ctypes.WINFUNCTYPE(ctypes.c_bool, wintypes.HWND, wintypes.LPARAM)(visit)
        user32.EnumWindows(callback, 0)
        found = best_match(title, [(name, rect) for name, rect in windows if rect[2] > 0 and rect[3] > 0])
        if found is None:
            raise ScreenError(
                f"machine.vision.window: no visible window's title contains {title!r}; start VRChat"
            )
        return found


def _x11_window_rect(title: str) -> Rect:
    if shutil.which("xwininfo") is None:
        raise ScreenError(
            "machine.vision.window needs `xwininfo` (Debian: apt install x11-utils) on Linux; "
            "or set machine.vision.region to [left, top, width, height]"
        )
    tree = subprocess.run(
        ["xwininfo", "-root", "-tree"], check=False, capture_output=True, text=True, timeout=5
    )
    windows: list[tuple[str, Rect]] = []
    for line in tree.stdout.splitlines():
        match = re.match(r'\s*(0x[0-9a-f]+) "([^"]*)"', line)
        if match and title.lower() in match.group(2).lower():
            info = subprocess.run(
                ["xwininfo", "-id", match.group(1)], check=False, capture_output=True, text=True, timeout=5
            )
            fields = dict(re.findall(r"^\s*([A-Za-z -]+):\s+(-?\d+)\s*$", info.stdout, re.MULTILINE))
            with contextlib.suppress(KeyError):
                windows.append(
                    (
                        match.group(2),
                        (
                            int(fields["Absolute upper-left X"]),
                            int(fields["Absolute upper-left Y"]),
                            int(fields["Width"]),
                            int(fields["Height"]),
                        ),
                    )
                )
    found = best_match(title, windows)
    if found is None:
        raise ScreenError(f"machine.vision.window: no window's title contains {title!r}; start VRChat")
    return found


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
