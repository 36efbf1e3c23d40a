"""VRChat credentials, read from the environment or else the OS keyring; never from configuration files.

| environment variable  | keyring entry (service "vrchat-companion") | what                          |
| --------------------- | ------------------------------------------ | ----------------------------- |
| `VRCHAT_USERNAME`     | `username`                                 | the bot account's login       |
| `VRCHAT_PASSWORD`     | `password`                                 | its password                  |
| `VRCHAT_TOTP_SECRET`  | `totp_secret`                              | base32 TOTP secret (optional) |
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import keyring
from keyring.errors import KeyringError
from pydantic import SecretStr

__all__ = ["KEYRING_SERVICE", "VRChatCredentials", "read_credentials"]

log = logging.getLogger(__name__)

KEYRING_SERVICE = "vrchat-companion"
_SOURCES = {"username": "VRCHAT_USERNAME", "password": "VRCHAT_PASSWORD", "totp_secret": "VRCHAT_TOTP_SECRET"}


@dataclass(frozen=True)
class VRChatCredentials:
    """What a password login needs. `repr()` and `str()` never show the password or the TOTP secret."""

    username: str
    password: SecretStr = field(repr=False)
    totp_secret: SecretStr | None = field(default=None, repr=False)


def _from_keyring(key: str) -> str | None:
    try:
        return keyring.get_password(KEYRING_SERVICE, key)
    except KeyringError as exc:
        log.debug("keyring has no usable backend (%s); only the environment is read", type(exc).__name__)
        return None


def _lookup(key: str) -> str | None:
    value = os.environ.get(_SOURCES[key]) or _from_keyring(key)
    return value.strip() if value and value.strip() else None


def read_credentials() -> VRChatCredentials | None:
    """The configured credentials, or None when username or password is missing."""
    username, password = _lookup("username"), _lookup("password")
    if username is None or password is None:
        return None
    totp = _lookup("totp_secret")
    return VRChatCredentials(
        username=username,
        password=SecretStr(password),
        totp_secret=SecretStr(totp.replace(" ", "")) if totp else None,
    )
