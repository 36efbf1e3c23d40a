"""Forgetting that completes: the intent is written first, and an unfinished purge is finished at open.

Forgetting blocks in an embedded store is: write the purge-pending file (durable, naming the blocks),
delete their collections, purge the files, remove the purge-pending file. Killed anywhere in between,
the next `ChromaStore.open` finds the file and does it all again before anything else. Purging:

- the SQLite file is vacuumed and its journal checkpointed (freed pages and the rollback journal still
  hold deleted rows: the records' metadata, Chroma's embeddings log and its full-text tables);
- vector-index folders that no segment uses any more are removed (Chroma leaves them behind; one whose
  files are still open, which Windows will not delete, is removed when the store opens next);
- the unused slots of every other index file are zeroed: Chroma 1.5 writes an index's whole capacity,
  and the slots past its element count hold leftover process memory, which was seen to include the text
  of other blocks' memories.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

from memory_store.chroma.index_health import index_header

logger = logging.getLogger(__name__)

SQLITE_FILE = "chroma.sqlite3"
PENDING_FILE = "infinimemory-purge-pending.json"


def pending_blocks(folder: Path) -> list[str]:
    """The blocks of a forget that did not finish (an empty list when none is pending)."""
    path = folder / PENDING_FILE
    if not path.exists():
        return []
    try:
        blocks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        blocks = None
    if not (isinstance(blocks, list) and all(isinstance(block, str) for block in blocks)):
        logger.warning("memory store %s: unreadable %s; the files are purged again anyway", folder, path.name)
        return []
    return blocks


def forget_durably(folder: Path, blocks: list[str], delete: Callable[[str], None]) -> None:
    """Record the intent to forget `blocks`, `delete` each one, purge the files, then clear the record."""
    path, staged = folder / PENDING_FILE, folder / f"{PENDING_FILE}.tmp"
    with staged.open("w", encoding="utf-8") as file:
        json.dump(sorted(set(blocks) | set(pending_blocks(folder))), file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(staged, path)
    for block in blocks:
        delete(block)
    purge_files(folder)
    path.unlink()


_LINK_LENGTH_BYTES = 4


def purge_files(folder: Path) -> None:
    """Vacuum the SQLite file, remove unused index folders and zero unused slots of the others."""
    with contextlib.closing(
        sqlite3.connect(folder / SQLITE_FILE, timeout=30.0, isolation_level=None)
    ) as database:
        database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        database.execute("VACUUM")
        database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    remove_unused_index_folders(folder)
    scrub_index_folders(folder)


def remove_unused_index_folders(folder: Path) -> None:
    """Remove the vector-index folders no segment of the SQLite file uses (Chroma leaves them behind).

    On Windows a file still open cannot be deleted: a folder the running store still holds stays, with a
    warning, and is removed here when the store opens next (before Chroma opens anything)."""
    database = folder / SQLITE_FILE
    if not database.exists():
        return
    with contextlib.closing(sqlite3.connect(database, timeout=30.0)) as connection:
        live = {row[0] for row in connection.execute("SELECT id FROM segments")}
    for entry in folder.iterdir():
        if not (entry.is_dir() and is_uuid(entry.name) and entry.name not in live):
            continue
        try:
            shutil.rmtree(entry)
        except OSError as exc:
            logger.warning(
                "memory store %s: the index folder %s of a forgotten block is still in use (%s); it is "
                "removed when the store opens next",
                folder,
                entry.name,
                exc.strerror or exc,
            )


def scrub_index_folders(folder: Path) -> None:
    """Zero what every vector-index folder of the store holds past its element count."""
    for entry in folder.iterdir():
        if entry.is_dir() and is_uuid(entry.name):
            zero_unused_index_slots(entry)


def zero_unused_index_slots(segment: Path) -> None:
    """Overwrite what lies past the element count in a vector-index folder with zeros: the unused slots of
    `data_level0.bin` and the unused entries of `length.bin` (one 4-byte link-list length per element). The
    index writes whole buffers of its capacity, and what it never filled holds whatever memory was there,
    which may be text of a forgotten block."""
    header = segment / "header.bin"
    if not header.is_file():
        return
    read = index_header(header.read_bytes())
    if read is None:  # a header cut short: the index is damaged and goes at the next open
        return
    if read.bytes_per_element:
        _zero_from(segment / "data_level0.bin", read.elements * read.bytes_per_element)
    _zero_from(segment / "length.bin", read.elements * _LINK_LENGTH_BYTES)


def _zero_from(path: Path, used: int) -> None:
    if not path.is_file() or used >= path.stat().st_size:
        return
    with path.open("r+b") as file:
        file.seek(used)
        file.write(bytes(path.stat().st_size - used))


def is_uuid(name: str) -> bool:
    """True for a folder name Chroma gives a segment."""
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True
