"""Where the VRChat session cookies are kept between runs, so a password login happens only when needed.

Two stores: a JSON file that only its owner can read (mode 0600 on POSIX, written atomically; on Windows,
where a file's mode says nothing about who may read it, the folder's access list does: the default data
folder is in the user's own profile) and the OS keyring.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import keyring
from keyring.errors import PasswordDeleteError

from flows.domain.credentials import KEYRING_SERVICE

__all__ = ["FileSessionStore", "KeyringSessionStore", "SessionCookies", "SessionStore"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionCookies:
    """The `auth` cookie and, when 2FA was passed, the `twoFactorAuth` cookie. Values never show in repr."""

    auth: str = field(repr=False)
    two_factor: str | None = field(default=None, repr=False)

    def to_json(self) -> str:
        """The stored form."""
        return json.dumps({"auth": self.auth, "twoFactorAuth": self.two_factor})

    @classmethod
    def from_json(cls, text: str) -> SessionCookies | None:
        """Parse the stored form; None (and a warning) when it is damaged."""
        try:
            data = json.loads(text)
            auth = data["auth"]
            two_factor = data.get("twoFactorAuth")
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("the saved VRChat session is damaged; a new login will replace it")
            return None
        if not isinstance(auth, str) or not auth or not isinstance(two_factor, str | None):
            log.warning("the saved VRChat session is damaged; a new login will replace it")
            return None
        return cls(auth=auth, two_factor=two_factor)


class SessionStore(Protocol):
    """Load, save and forget the session cookies."""

    def load(self) -> SessionCookies | None:
        """The saved cookies, or None."""
        ...

    def save(self, cookies: SessionCookies) -> None:
        """Replace the saved cookies."""
        ...

    def clear(self) -> None:
        """Forget the saved cookies."""
        ...


def modes_guard_files() -> bool:
    """Whether a file's mode bits say who may read it (POSIX); on Windows they do not (access lists do), and
    `chmod` only sets or clears the read-only flag."""
    return sys.platform != "win32"


class FileSessionStore:
    """A JSON file readable by its owner only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> SessionCookies | None:
        """Read the file; on POSIX a file others could read is tightened to 0600 first."""
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode & 0o077 and modes_guard_files():
                log.warning("%s was readable by others (mode %o); tightening it to 0600", self.path, mode)
                self.path.chmod(0o600)
            return SessionCookies.from_json(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def save(self, cookies: SessionCookies) -> None:
        """Write a temporary file created with mode 0600, then rename it over the old one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(cookies.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def clear(self) -> None:
        """Delete the file."""
        self.path.unlink(missing_ok=True)


class KeyringSessionStore:
    """One entry in the OS keyring (service "vrchat-companion", name "session")."""

    entry = "session"

    def load(self) -> SessionCookies | None:
        """Read the keyring entry."""
        text = keyring.get_password(KEYRING_SERVICE, self.entry)
        return SessionCookies.from_json(text) if text else None

    def save(self, cookies: SessionCookies) -> None:
        """Write the keyring entry."""
        keyring.set_password(KEYRING_SERVICE, self.entry, cookies.to_json())

    def clear(self) -> None:
        """Delete the keyring entry."""
        with contextlib.suppress(PasswordDeleteError):
            keyring.delete_password(KEYRING_SERVICE, self.entry)


@dataclass(frozen=True)
class BlockedLogin:
    """Why logins are blocked; `email_code` when VRChat asked for an email code."""

    reason: str
    email_code: bool


class LoginBlock:
    """A file in the data folder that stops further password logins after one failed for a reason a retry
    cannot fix (wrong password, missing TOTP secret, an email code): no loop of logins, or of emails."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def current(self) -> BlockedLogin | None:
        """The block in force, or None."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return BlockedLogin(str(data["reason"]), bool(data["email_code"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return BlockedLogin(f"logins are blocked ({self.path} is damaged); delete it to retry", False)

    def set(self, blocked: BlockedLogin) -> None:
        """Block logins."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(
            json.dumps({"reason": blocked.reason, "email_code": blocked.email_code}), "utf-8"
        )

    def clear(self) -> None:
        """Allow logins again."""
        self.path.unlink(missing_ok=True)
