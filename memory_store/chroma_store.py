"""The Chroma database behind InfiniMemory: one collection per memory block, and forgetting for real.

An embedded `PersistentClient` owns its folder (one process only); an `HttpClient` talks to a Chroma
server that any number of processes share. Forgetting a block deletes its collection; with the embedded
client the store's files are then purged so the deleted text and vectors cannot be read back from disk:

- the SQLite file is vacuumed (its freed pages still hold deleted rows, including the full-text tables
  and the embeddings log) and its journal checkpointed;
- the deleted collection's vector-index folder is removed;
- the unused slots of every other index file are zeroed: Chroma 1.5 writes an index's whole capacity,
  and the slots past its element count hold leftover process memory, which was seen to include the text
  of other blocks' memories.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import sqlite3
import struct
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import chromadb
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import ChromaError, NotFoundError

from memory_store.block_records import BlockRecords
from memory_store.errors import MemoryStoreError
from memory_store.settings import HnswSettings, MemoryStoreSettings

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

logger = logging.getLogger(__name__)

COLLECTION_PREFIX = "infinimemory-"
"""Chroma collection name = this prefix + block name."""
BLOCK_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")
SQLITE_FILE = "chroma.sqlite3"
INDEX_HEADER = struct.Struct("<iQQQQ")
"""Start of a Chroma hnswlib `header.bin`: format version, level-0 offset, capacity, element count,
bytes per element."""


def check_block_name(name: str) -> str:
    """`name` if it can name a memory block, else a clear error."""
    if not BLOCK_NAME.fullmatch(name):
        raise ValueError(
            f"memory block name {name!r} is not allowed: use 1-63 letters, digits, '_' or '-', "
            "starting and ending with a letter or digit (e.g. 'celeste')"
        )
    return name


class ChromaStore:
    """The Chroma client of one memory system and the blocks stored in it."""

    def __init__(self, client: ClientAPI, folder: Path | None, hnsw: HnswSettings) -> None:
        self._client = client
        self._folder = folder
        self._hnsw = hnsw
        self._writing = threading.RLock()

    @classmethod
    def open(cls, settings: MemoryStoreSettings) -> ChromaStore:
        """Connect as configured; a folder or server that cannot be used raises `MemoryStoreError`."""
        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if settings.client == "http":
            server = settings.server
            try:
                client = chromadb.HttpClient(
                    host=server.host, port=server.port, ssl=server.ssl, settings=chroma_settings
                )
                client.heartbeat()
            except Exception as exc:
                raise MemoryStoreError(
                    f"cannot reach the Chroma server at {server.host}:{server.port} ({exc}); start it with "
                    "`chroma run --path DIR` or fix memory_store.server"
                ) from None
            return cls(client, None, settings.hnsw)
        folder = _usable_folder(settings.path)
        try:
            client = chromadb.PersistentClient(path=str(folder), settings=chroma_settings)
            client.list_collections(limit=1)
        except ChromaError as exc:
            raise MemoryStoreError(
                f"the memory store in {folder} cannot be opened ({exc}); if it is corrupt, move the folder "
                "away to start with an empty store, or set memory_store.on_store_error: degrade to talk "
                "without memory"
            ) from None
        return cls(client, folder, settings.hnsw)

    def records(self, block: str) -> BlockRecords:
        """The stored memories of `block` (its collection is created on the first write)."""
        return BlockRecords(
            self._client, COLLECTION_PREFIX + check_block_name(block), self._hnsw, self._writing
        )

    def last_activity_by_block(self) -> dict[str, float | None]:
        """Every block in the store with the last activity written for it."""
        found: dict[str, float | None] = {}
        for collection in self._client.list_collections():
            if collection.name.startswith(COLLECTION_PREFIX):
                found[collection.name.removeprefix(COLLECTION_PREFIX)] = BlockRecords.activity_of(collection)
        return found

    def forget(self, blocks: list[str]) -> None:
        """Delete the collections of `blocks`, then purge the deleted data from the files."""
        with self._writing:
            for block in blocks:
                with contextlib.suppress(NotFoundError):
                    self._client.delete_collection(COLLECTION_PREFIX + check_block_name(block))
            if blocks:
                self._purge()

    def _purge(self) -> None:
        if self._folder is None:
            logger.info("forgotten blocks deleted on the Chroma server (its files are purged on the server)")
            return
        database = self._folder / SQLITE_FILE
        with contextlib.closing(sqlite3.connect(database, timeout=30.0, isolation_level=None)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            live = {row[0] for row in db.execute("SELECT id FROM segments")}
        for entry in self._folder.iterdir():
            if not (entry.is_dir() and _is_uuid(entry.name)):
                continue
            if entry.name in live:
                zero_unused_index_slots(entry)
            else:
                shutil.rmtree(entry, ignore_errors=True)

    def close(self) -> None:
        """Release the client (and, for the embedded one, the folder)."""
        with contextlib.suppress(Exception):
            self._client.close()  # type: ignore[attr-defined]


def zero_unused_index_slots(segment: Path) -> None:
    """Overwrite the slots past the element count in a vector-index folder's `data_level0.bin` with zeros."""
    header, data = segment / "header.bin", segment / "data_level0.bin"
    if not (header.is_file() and data.is_file()):
        return
    with header.open("rb") as file:
        raw = file.read(INDEX_HEADER.size)
    if len(raw) < INDEX_HEADER.size:
        return
    _version, _offset, _capacity, count, per_element = INDEX_HEADER.unpack(raw)
    used = count * per_element
    size = data.stat().st_size
    if per_element == 0 or used >= size:
        return
    with data.open("r+b") as file:
        file.seek(used)
        file.write(bytes(size - used))


def _is_uuid(name: str) -> bool:
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True


def _usable_folder(folder: Path) -> Path:
    """`folder`, created if missing, after checking that this process can write there."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MemoryStoreError(
            f"memory_store.path: cannot create the store folder {folder} ({exc.strerror}); point it at a "
            "writable folder"
        ) from None
    probe = folder / f".write-probe-{uuid.uuid4().hex}"
    database = folder / SQLITE_FILE
    try:
        probe.write_bytes(b"")
        probe.unlink()
        if database.exists():
            with database.open("ab"):
                pass
    except OSError as exc:
        raise MemoryStoreError(
            f"memory_store.path: the store folder {folder} is not writable ({exc.strerror}); fix its "
            "permissions, point memory_store.path elsewhere, or set memory_store.on_store_error: degrade "
            "to talk without memory"
        ) from None
    return folder
