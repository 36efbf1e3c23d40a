"""Bad stores and bad input: clear errors or a logged degraded mode, recall that fails never breaks a
turn, empty and huge texts are capped, wrong settings name the key."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest
from memory_fakes import OpenSystem, WordHashEmbedder, settings_for

from companion_settings import ConfigError
from companion_settings.folders import data_folder
from memory_store import MemoryStoreError, MemorySystem, load_settings
from memory_store.chroma.block_records import seq_of
from memory_store.embedding import Vectors

REPO = Path(__file__).resolve().parents[2]


class FailingEmbedder(WordHashEmbedder):
    """Embeds memories, but fails on every call after `works_for` calls."""

    def __init__(self, works_for: int) -> None:
        super().__init__()
        self.works_for = works_for

    def embed(self, texts: Sequence[str]) -> Vectors:
        if self.calls >= self.works_for:
            raise RuntimeError("embedding backend crashed")
        return super().embed(texts)


def test_a_missing_store_folder_is_created(tmp_path: Path, open_system: OpenSystem, store_dir: Path) -> None:
    assert not store_dir.exists()

    open_system().block("celeste").remember("hello", "hi")

    assert (store_dir / "chroma.sqlite3").is_file()


def test_a_store_path_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "memory"
    blocker.write_text("not a folder")

    with pytest.raises(MemoryStoreError, match=r"memory_store.path: cannot create the store folder .*memory"):
        MemorySystem.open(settings_for(blocker), embedder=WordHashEmbedder())
    assert blocker.read_text() == "not a folder"


def test_a_read_only_store_folder_is_a_clear_error(tmp_path: Path) -> None:
    """In a fresh interpreter; as root, without the capability to override file permissions."""
    store = tmp_path / "memory"
    store.mkdir()
    store.chmod(0o555)
    script = textwrap.dedent(f"""
        from pathlib import Path
        from memory_store import MemoryStoreError, MemoryStoreSettings, MemorySystem
        try:
            MemorySystem.open(MemoryStoreSettings(path=Path({str(store)!r})))
        except MemoryStoreError as exc:
            print("ERROR:", exc)
        system = MemorySystem.open(MemoryStoreSettings(path=Path({str(store)!r}), on_store_error="degrade"))
        print("DEGRADED:", system.degraded)
    """)
    command = [sys.executable, "-c", script]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: a folder cannot be made read-only for root")
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120, check=False)

    assert "ERROR: memory_store.path: the store folder" in done.stdout, done.stderr
    assert "is not writable (Permission denied)" in done.stdout
    assert "DEGRADED: True" in done.stdout
    assert "DEGRADED: memories are kept in memory only" in done.stderr
    assert list(store.iterdir()) == []


def test_a_corrupt_store_is_a_clear_error_and_is_left_as_it_was(store_dir: Path) -> None:
    store_dir.mkdir()
    garbage = os.urandom(64 * 1024)
    (store_dir / "chroma.sqlite3").write_bytes(garbage)

    with pytest.raises(MemoryStoreError, match=r"cannot be opened .*move the folder away"):
        MemorySystem.open(settings_for(store_dir), embedder=WordHashEmbedder())
    assert (store_dir / "chroma.sqlite3").read_bytes() == garbage


def test_degraded_mode_keeps_the_conversation_going_without_recall(
    store_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store_dir.mkdir()
    (store_dir / "chroma.sqlite3").write_bytes(b"corrupt" * 1000)
    embedder = WordHashEmbedder()
    with caplog.at_level(logging.ERROR, logger="memory_store"):
        system = MemorySystem.open(
            settings_for(store_dir, on_store_error="degrade", recall={"window_size": 2}), embedder=embedder
        )
    block = system.block("celeste")
    for topic in ("kites", "boats", "trains"):
        block.remember(f"I love {topic}", f"{topic} are fun")

    context = block.context("I love kites")

    assert system.degraded and "DEGRADED" in caplog.text
    assert context.recollections == ()
    assert [m.question for m in context.window] == ["I love boats", "I love trains"]
    assert embedder.calls == 0
    block.reset()
    assert block.context("x").window == ()


def test_recall_that_fails_never_breaks_a_turn(
    open_system: OpenSystem, caplog: pytest.LogCaptureFixture
) -> None:
    embedder = FailingEmbedder(works_for=4)  # the warm-up and three memories
    block = open_system(embedder, recall={"window_size": 1}).block("celeste")
    for topic in ("kites", "boats", "trains"):
        block.remember(f"I love {topic}", f"{topic} are fun")

    with caplog.at_level(logging.ERROR, logger="memory_store"):
        context = block.context("I love kites")

    assert context.recollections == ()
    assert [m.question for m in context.window] == ["I love trains"]
    assert "recall failed; this turn uses the recent window only" in caplog.text


def test_a_memory_that_cannot_be_stored_is_a_clear_error(open_system: OpenSystem) -> None:
    block = open_system(FailingEmbedder(works_for=1)).block("celeste")

    with pytest.raises(MemoryStoreError, match=r"cannot store the memory .*embedding backend crashed"):
        block.remember("I love kites", "kites are fun")


def test_with_degrade_a_memory_that_cannot_be_stored_stays_in_the_window(open_system: OpenSystem) -> None:
    embedder = FailingEmbedder(works_for=1)
    block = open_system(embedder, on_store_error="degrade").block("celeste")

    kept = block.remember("I love kites", "kites are fun")
    embedder.works_for = 100  # storing works again
    saved = block.remember("I love boats", "boats are fun")

    assert kept is not None and saved is not None
    assert block.context("kites").window == (kept, saved)
    assert seq_of(saved.id) == 0, "an unsaved memory must not leave a gap in the stored ids"


def test_empty_and_huge_texts_are_capped_not_crashing(open_system: OpenSystem) -> None:
    system = open_system(max_text_chars=500, recall={"window_size": 1})
    block = system.block("celeste")
    huge = "kites " * 200_000

    assert block.remember("", "   ") is None
    stored = block.remember(huge, huge, speaker="x" * 1000)
    block.remember("filler", "filler")

    assert stored is not None and len(stored.question) == len(stored.answer) == 500
    assert stored.speaker is not None and len(stored.speaker) == 100
    assert block.context(huge).recollections == (stored,)
    assert block.context("").recollections == ()
    assert [m.question for m in block.context("").window] == ["filler"]


@pytest.mark.parametrize("name", ["", "a b", "-x", "x" * 64, "../etc", "celeste\n"])
def test_a_bad_block_name_is_a_clear_error(open_system: OpenSystem, name: str) -> None:
    with pytest.raises(ValueError, match=r"memory block name .* is not allowed: use 1-63 letters"):
        open_system().block(name)


def test_the_shipped_settings_load_with_the_store_in_the_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPANION_CONFIG", raising=False)
    settings = load_settings(REPO / "conf" / "default.yaml")

    assert settings.path == data_folder() / "memory"
    assert settings.client == "persistent" and settings.embedding_model == "bundled"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "MEMORY_STORE_RECALL__TOP_K",
            "-1",
            "memory_store.recall.top_k: Input should be greater than or equal",
        ),
        (
            "MEMORY_STORE_SESSIONS__ACTIVITY_WRITE_INTERVAL_S",
            "200",
            "activity_write_interval_s must be well below",
        ),
        ("MEMORY_STORE_CLIENT", "cloud", "memory_store.client: Input should be 'persistent' or 'http'"),
    ],
)
def test_a_wrong_setting_names_the_key(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("MEMORY_STORE_SESSIONS__IDLE_TIMEOUT_S", "100")

    with pytest.raises(ConfigError, match=message):
        load_settings(REPO / "conf" / "default.yaml")
