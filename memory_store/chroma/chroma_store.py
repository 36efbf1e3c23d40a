"""The Chroma database behind InfiniMemory: one collection per memory block, opened safely.

An embedded `PersistentClient` owns its folder (one process only, enforced by `StoreLock`); an
`HttpClient` talks to a Chroma server that any number of processes share. Opening an embedded store:

1. take the folder's lock (a second process gets a clear error naming the first);
2. check every block's vector-index files, and after an unclean shutdown probe each block's index in a
   child process (`index_health`); damaged index folders are removed before Chroma loads them;
3. finish a forget that was interrupted (`forgetting`), before anything else reads the store;
4. rebuild damaged blocks from their stored texts (`index_repair`).

Forgetting a block deletes its collection; with the embedded client the store's files are then purged
(see `forgetting`), so the deleted text cannot be read back from disk.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import chromadb
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError

from memory_store.chroma.block_records import BlockRecords
from memory_store.chroma.forgetting import (
    PENDING_FILE,
    SQLITE_FILE,
    forget_durably,
    pending_blocks,
    purge_files,
    remove_unused_index_folders,
    scrub_index_folders,
)
from memory_store.chroma.index_health import damaged_index_files, probe_collections, vector_segments
from memory_store.chroma.index_repair import REBUILDING_PREFIX, finish_rebuild, rebuild_collection
from memory_store.embedding import Vectors
from memory_store.errors import MemoryStoreError
from memory_store.memory import Memory
from memory_store.settings import HnswSettings, MemoryStoreSettings, note_earlier_store
from memory_store.store_lock import PreviousOwner, StoreLock

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

logger = logging.getLogger(__name__)

COLLECTION_PREFIX = "infinimemory-"
"""Chroma collection name = this prefix + block name."""
BLOCK_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")
EmbedMemories = Callable[[list[Memory]], Vectors]


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

    def __init__(
        self, client: ClientAPI, folder: Path | None, hnsw: HnswSettings, lock: StoreLock | None = None
    ) -> None:
        self._client = client
        self._folder = folder
        self._hnsw = hnsw
        self._lock = lock
        self._writing = threading.RLock()

    @classmethod
    def open(cls, settings: MemoryStoreSettings, embed: EmbedMemories) -> ChromaStore:
        """Connect as configured, repairing an embedded store first (`embed` re-embeds damaged blocks).

        A folder or server that cannot be used raises `MemoryStoreError`; a folder another process owns
        raises `StoreInUseError`.
        """
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
        note_earlier_store(settings)  # before the folder is made: only the first open says it
        folder = _usable_folder(settings.path)
        lock = StoreLock.acquire(folder)
        try:
            damaged = _remove_damaged_indexes(folder, lock.previous)
            remove_unused_index_folders(folder)  # left by a forget while in use (Windows), none elsewhere
            client = chromadb.PersistentClient(path=str(folder), settings=chroma_settings)
            store = cls(client, folder, settings.hnsw, lock)
            store._repair(damaged, embed)
        except BaseException as exc:
            lock.release()
            if isinstance(exc, MemoryStoreError | KeyboardInterrupt | SystemExit):
                raise
            raise MemoryStoreError(_unusable(folder, exc)) from None
        return store

    def _repair(self, damaged: dict[str, str], embed: EmbedMemories) -> None:
        """Finish an interrupted forget, then rebuilds: interrupted ones and damaged blocks."""
        assert self._folder is not None
        if (self._folder / PENDING_FILE).exists():
            pending = pending_blocks(self._folder)
            logger.warning("memory store %s: finishing an interrupted forget of %s", self._folder, pending)
            forget_durably(self._folder, pending, self._delete)
        names = [collection.name for collection in self._client.list_collections()]
        for staged in [name for name in names if name.startswith(REBUILDING_PREFIX)]:
            original = staged.removeprefix(REBUILDING_PREFIX)
            if damaged.pop(staged, None) is not None:  # never complete: its index was being written
                self._client.delete_collection(staged)
            if not finish_rebuild(self._client, original) and original in names:
                damaged.setdefault(original, "an earlier rebuild did not finish")
        for name in damaged:
            rebuild_collection(self._client, name, embed, self._hnsw)
        if damaged:
            purge_files(self._folder)

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
        """Delete the collections of `blocks`; with the embedded store, purge the deleted data from the files
        (durably: a forget killed half-way is finished when the store is opened next)."""
        if not blocks:
            return
        for block in blocks:
            check_block_name(block)
        with self._writing:
            if self._folder is None:
                for block in blocks:
                    self._delete(block)
                logger.info(
                    "forgotten blocks deleted on the Chroma server; its files keep the text until "
                    "`chroma vacuum --path DIR` runs on the stopped server"
                )
                return
            forget_durably(self._folder, blocks, self._delete)

    def _delete(self, block: str) -> None:
        with contextlib.suppress(NotFoundError):
            self._client.delete_collection(COLLECTION_PREFIX + block)

    def close(self) -> None:
        """Release the client and, for the embedded store, scrub its index files and release the folder."""
        with contextlib.suppress(Exception):
            self._client.close()  # type: ignore[attr-defined]
        if self._folder is not None and self._lock is not None:
            scrub_index_folders(self._folder)  # what the index wrote past its elements is stale memory
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _remove_damaged_indexes(folder: Path, previous: PreviousOwner) -> dict[str, str]:
    """Collection name -> why its index is damaged; the damaged index folders (and those of blocks that
    are being forgotten) are removed, so Chroma never loads them."""
    database = folder / SQLITE_FILE
    if not database.exists():
        return {}
    segments = vector_segments(database)
    doomed = {COLLECTION_PREFIX + block for block in pending_blocks(folder)}
    damaged = {
        name: why
        for name, segment in segments.items()
        if name not in doomed and (why := damaged_index_files(folder / segment)) is not None
    }
    if not previous.closed_cleanly:
        logger.warning(
            "memory store %s was not closed cleanly (process %s); checking every block's index",
            folder,
            previous.pid or "unknown",
        )
        unchecked = [name for name in segments if name not in doomed | set(damaged)]
        damaged |= probe_collections(folder, unchecked)
    for name in sorted(doomed | set(damaged)):
        if name in segments:
            shutil.rmtree(folder / segments[name], ignore_errors=True)
        if name in damaged:
            logger.warning("memory store %s: the index of %s is damaged (%s)", folder, name, damaged[name])
    return damaged


def _unusable(folder: Path, exc: BaseException) -> str:
    return (
        f"the memory store in {folder} cannot be opened ({type(exc).__name__}: {exc}); if it is corrupt, "
        "move the folder away to start with an empty store, or set memory_store.on_store_error: degrade "
        "to talk without memory"
    )


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
