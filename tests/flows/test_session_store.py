"""Where the session cookies live: a 0600 file, or the OS keyring."""

from __future__ import annotations

import stat
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from flows.domain.session_store import FileSessionStore, KeyringSessionStore, SessionCookies


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring backend (the test machine has no OS keyring)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.entries:
            raise keyring.errors.PasswordDeleteError(username)
        del self.entries[(service, username)]


def test_the_file_is_written_owner_only_and_read_back(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path / "data" / "vrchat_session.json")
    cookies = SessionCookies(auth="authcookie_abc", two_factor="tfa_def")
    store.save(cookies)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.load() == cookies
    assert "authcookie_abc" not in repr(cookies)
    store.clear()
    assert store.load() is None


def test_a_damaged_file_means_a_new_login(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = FileSessionStore(tmp_path / "vrchat_session.json")
    store.path.write_text("{not json", encoding="utf-8")
    store.path.chmod(0o600)
    assert store.load() is None
    assert "damaged" in caplog.text


def test_the_keyring_store(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        store = KeyringSessionStore()
        assert store.load() is None
        store.save(SessionCookies(auth="authcookie_abc"))
        assert store.load() == SessionCookies(auth="authcookie_abc")
        store.clear()
        store.clear()  # clearing twice is fine
        assert backend.entries == {}
    finally:
        keyring.set_keyring(previous)
