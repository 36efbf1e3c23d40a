"""What the bot keeps lives in the platform's folders for the user (platformdirs), not in the working
directory or `~/.cache` on every platform: Windows, macOS and Linux simulated by platformdirs' own classes."""

from __future__ import annotations

import logging
import stat
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path, PureWindowsPath

import platformdirs
import pytest
from platformdirs.macos import MacOS
from platformdirs.unix import Unix
from platformdirs.windows import Windows

from companion_settings.folders import cache_folder, data_folder, note_earlier_default
from flows.composition import open_batch
from flows.domain import settings as flows_settings
from flows.domain.session_store import FileSessionStore, SessionCookies
from memory_store import MemorySystem
from memory_store import settings as memory_settings
from memory_store.embedding import Vectors
from memory_store.settings import MemoryStoreSettings

LOCAL_APPDATA = r"C:\Users\Robin\AppData\Local"
REALLY_WINDOWS = sys.platform == "win32"


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """platformdirs as on Windows, for a user Robin (the folder Windows names is given, as on Windows)."""
    monkeypatch.setattr(platformdirs, "PlatformDirs", Windows)
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", LOCAL_APPDATA)
    yield


@pytest.fixture
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default configuration as a player has it: no MEMORY_STORE_PATH (the test session sets one)."""
    monkeypatch.delenv("MEMORY_STORE_PATH", raising=False)
    monkeypatch.delenv("FLOWS_DATA_DIR", raising=False)


def _windows(path: Path) -> PureWindowsPath:
    return PureWindowsPath(str(path))


@pytest.mark.usefixtures("windows")
def test_on_windows_data_and_cache_are_in_the_local_app_data_folder() -> None:
    assert _windows(data_folder()) == PureWindowsPath(LOCAL_APPDATA, "vrchat-companion")
    assert _windows(cache_folder()) == PureWindowsPath(LOCAL_APPDATA, "vrchat-companion", "Cache")


def test_on_macos_in_application_support_and_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platformdirs, "PlatformDirs", MacOS)
    home = Path.home()
    assert data_folder() == home / "Library" / "Application Support" / "vrchat-companion"
    assert cache_folder() == home / "Library" / "Caches" / "vrchat-companion"


def test_on_linux_the_xdg_folders_as_before(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(platformdirs, "PlatformDirs", Unix)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert cache_folder() == tmp_path / "cache" / "vrchat-companion", "what the chat model's cache used"
    assert data_folder() == tmp_path / "share" / "vrchat-companion"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("XDG_DATA_HOME")
    assert cache_folder() == Path.home() / ".cache" / "vrchat-companion"
    assert data_folder() == Path.home() / ".local" / "share" / "vrchat-companion"


@pytest.mark.usefixtures("windows", "no_overrides")
def test_the_memory_store_defaults_to_the_data_folder_whatever_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    expected = PureWindowsPath(LOCAL_APPDATA, "vrchat-companion", "memory")
    assert _windows(memory_settings.load_settings().path) == expected, "conf/default.yaml: path: null"
    assert _windows(MemoryStoreSettings().path) == expected


@pytest.mark.usefixtures("no_overrides")
def test_an_explicit_store_path_and_the_environment_still_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "conf" / "mine.yaml"
    config.parent.mkdir()
    config.write_text("memory_store:\n  path: ../store\n", encoding="utf-8")
    assert memory_settings.load_settings(config).path == tmp_path / "store", "relative to the file"
    monkeypatch.setenv("MEMORY_STORE_PATH", str(tmp_path / "elsewhere"))
    assert memory_settings.load_settings(config).path == tmp_path / "elsewhere"


@pytest.mark.usefixtures("windows", "no_overrides")
def test_the_flows_keep_their_files_in_the_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = flows_settings.load_settings()
    folder = PureWindowsPath(LOCAL_APPDATA, "vrchat-companion", "flows")
    assert _windows(settings.data_dir) == folder
    assert _windows(settings.ledger_path) == folder / "friend_ledger.sqlite3"
    assert _windows(settings.cookie_path) == folder / "vrchat_session.json"
    monkeypatch.setenv("FLOWS_DATA_DIR", "data")
    assert flows_settings.load_settings().data_dir == Path("data"), "a setting still wins"


def test_files_left_in_the_earlier_default_are_pointed_out_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    earlier, now = tmp_path / "data" / "memory", tmp_path / "share" / "memory"
    with caplog.at_level(logging.WARNING, logger="companion_settings.folders"):
        assert not note_earlier_default(earlier, now, "memory_store.path"), "nothing there"
        earlier.mkdir(parents=True)
        (earlier / "chroma.sqlite3").write_text("x", encoding="utf-8")
        assert note_earlier_default(earlier, now, "memory_store.path")
        now.mkdir(parents=True)
        assert not note_earlier_default(earlier, now, "memory_store.path"), "the new folder is in use"
    assert [r.getMessage() for r in caplog.records] == [
        f"memory_store.path now defaults to {now}, the platform's data folder; {earlier}, the folder "
        "earlier versions used, is no longer read: move it there, or set memory_store.path: "
        f"{earlier} to keep using it"
    ]


@pytest.mark.usefixtures("no_overrides")
def test_the_first_open_points_out_an_earlier_store_and_ledger_and_only_that(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Opening the store and a flows batch in the new default folders says where the earlier files are;
    loading the settings alone (`python -m machine devices`) does not, nor does a second open."""
    monkeypatch.setattr(platformdirs, "PlatformDirs", Unix)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    earlier_store = tmp_path / "repo" / "data" / "memory"
    earlier_store.mkdir(parents=True)
    (earlier_store / "chroma.sqlite3").write_text("x", encoding="utf-8")
    monkeypatch.setattr(memory_settings, "EARLIER_DEFAULT_PATH", earlier_store)
    monkeypatch.chdir(tmp_path / "repo")
    (tmp_path / "repo" / "data" / "friend_ledger.sqlite3").write_text("x", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="companion_settings.folders"):
        memory, flows = memory_settings.load_settings(), flows_settings.load_settings()
        assert caplog.records == [], "settings alone say nothing"
        for _ in range(2):
            MemorySystem.open(memory, embedder=WordsEmbedder()).close()
            with open_batch(flows, credentials=lambda: None):
                pass
    keys = [r.getMessage().split()[0] for r in caplog.records]
    assert keys == ["memory_store.path", "flows.data_dir"]
    assert memory.path == tmp_path / "share" / "vrchat-companion" / "memory"


class WordsEmbedder:
    """Never asked: no block is opened."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        raise AssertionError("no embedding is needed to open the store")


def test_the_saved_session_is_not_tightened_on_windows_where_modes_mean_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """On Windows every file reads as mode 0666 (or 0444); tightening would warn at every load and chmod
    only toggles the read-only flag. The folder's access list (the user's own profile) guards the file."""
    store = FileSessionStore(tmp_path / "vrchat_session.json")
    store.save(SessionCookies(auth="authcookie_abc"))
    store.path.chmod(0o666)
    monkeypatch.setattr(sys, "platform", "win32")
    with caplog.at_level(logging.WARNING, logger="flows.domain.session_store"):
        assert store.load() == SessionCookies(auth="authcookie_abc")
    assert caplog.records == []
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o666, "not touched"


@pytest.mark.skipif(REALLY_WINDOWS, reason="POSIX file modes")
def test_elsewhere_a_session_others_can_read_is_still_tightened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileSessionStore(tmp_path / "vrchat_session.json")
    store.save(SessionCookies(auth="authcookie_abc"))
    store.path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="flows.domain.session_store"):
        store.load()
    assert "tightening it to 0600" in caplog.text and stat.S_IMODE(store.path.stat().st_mode) == 0o600
