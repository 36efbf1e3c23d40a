"""The folders the bot writes to unless a setting names another: the platform's own, per user (platformdirs).

- data: ``$XDG_DATA_HOME/vrchat-companion`` on Linux (``~/.local/share/vrchat-companion``),
  ``%LOCALAPPDATA%\\vrchat-companion`` on Windows,
  ``~/Library/Application Support/vrchat-companion`` on macOS;
- cache: ``$XDG_CACHE_HOME/vrchat-companion`` on Linux (``~/.cache/vrchat-companion``),
  ``%LOCALAPPDATA%\\vrchat-companion\\Cache`` on Windows, ``~/Library/Caches/vrchat-companion`` on macOS.

The data folder holds what a player would miss if it were deleted (the memory store, the flows' ledger and
saved VRChat session); the cache folder only what can be made again (the chat model's dequantised weights).
Neither depends on the working directory, and Windows keeps both in the local (not roaming) profile.
"""

from __future__ import annotations

import logging
from pathlib import Path

import platformdirs

__all__ = ["APP_NAME", "cache_folder", "data_folder", "note_earlier_default"]

log = logging.getLogger(__name__)

APP_NAME = "vrchat-companion"
"""The folders' name under the platform's data and cache folders."""


def data_folder() -> Path:
    """The user's data folder for the bot (see the table above); not created here."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_folder() -> Path:
    """The user's cache folder for the bot (see the table above); not created here."""
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def note_earlier_default(earlier: Path, now: Path, key: str, names: tuple[str, ...] = ()) -> bool:
    """Warn (and return True) when the folder an earlier version used by default still holds its files (any,
    or one of `names`) and the platform folder that replaced it does not exist yet: what is there is not
    used unless moved, or unless `key` names the earlier folder."""
    try:
        if names:
            holds_files = any((earlier / name).exists() for name in names)
        else:
            holds_files = earlier.is_dir() and any(earlier.iterdir())
    except OSError:
        return False
    if not holds_files or now.exists():
        return False
    log.warning(
        "%s now defaults to %s, the platform's data folder; %s, the folder earlier versions used, is "
        "no longer read: move it there, or set %s: %s to keep using it",
        key,
        now,
        earlier,
        key,
        earlier,
    )
    return True
