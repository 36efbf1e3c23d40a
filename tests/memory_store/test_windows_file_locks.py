"""Forgetting where an open file cannot be deleted (Windows): an index folder the running store still
holds stays, with a warning, and is removed when the store opens next, before Chroma opens anything."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from memory_fakes import OpenSystem

from memory_store.chroma import forgetting


def _index_folders(store: Path) -> set[str]:
    return {entry.name for entry in store.iterdir() if entry.is_dir() and forgetting.is_uuid(entry.name)}


def test_an_index_folder_still_in_use_is_removed_at_the_next_open(
    open_system: OpenSystem,
    store_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    system = open_system()
    block = system.block("celeste")
    for turn in range(3):
        block.remember(f"my cat number {turn} is called Pickles", "What a name.")
    system.close()  # the index is written
    before = _index_folders(store_dir)
    assert before, "the block has an index folder"

    system = open_system()
    removing = shutil.rmtree

    def in_use(path: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "The process cannot access the file because it is being used", str(path))

    monkeypatch.setattr(forgetting.shutil, "rmtree", in_use)
    with caplog.at_level(logging.WARNING, logger="memory_store.chroma.forgetting"):
        system.block("celeste").reset("the player asked")
    assert before <= _index_folders(store_dir), "Windows kept the folder"
    assert "is still in use" in caplog.text and "removed when the store opens next" in caplog.text
    monkeypatch.setattr(forgetting.shutil, "rmtree", removing)
    system.close()

    open_system()
    assert not before & _index_folders(store_dir), "removed at open"
