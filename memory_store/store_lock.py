"""One process at a time owns an embedded store folder, and the next owner learns whether the last one
shut down cleanly.

Chroma's `PersistentClient` is not process-safe: two processes writing one folder drop each other's
records without an error. The owner holds an OS file lock (`filelock`: `flock` on POSIX, `msvcrt` on
Windows), which the OS releases when the process dies, however it dies. Beside the lock, an owner file
says which process holds the store and whether it is still open; an owner file still marked open when
the lock is free means the last owner was killed, so the store is checked for damage before use.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from memory_store.errors import StoreInUseError

logger = logging.getLogger(__name__)

LOCK_FILE = "infinimemory.lock"
OWNER_FILE = "infinimemory-owner.json"


@dataclass(frozen=True)
class PreviousOwner:
    """What the owner file said when this process took the store over."""

    pid: int | None
    closed_cleanly: bool
    """False when the last owner died with the store open (or no owner file vouches for it)."""


class StoreLock:
    """The lock of one embedded store folder, held from `acquire` until `release`."""

    def __init__(self, folder: Path, lock: FileLock, previous: PreviousOwner) -> None:
        self.folder = folder
        self.previous = previous
        self._lock = lock

    @classmethod
    def acquire(cls, folder: Path) -> StoreLock:
        """Take the folder over, or raise `StoreInUseError` naming the process that holds it."""
        lock = FileLock(folder / LOCK_FILE, timeout=0, thread_local=False)
        try:
            lock.acquire()
        except Timeout:
            raise StoreInUseError(_in_use_message(folder)) from None
        previous = _read_owner(folder)
        _write_owner(folder, is_open=True)
        return cls(folder, lock, previous)

    def release(self) -> None:
        """Mark the store closed cleanly and let the next process have it."""
        try:
            _write_owner(self.folder, is_open=False)
        except OSError as exc:
            logger.warning("memory store %s: could not mark it closed (%s)", self.folder, exc)
        self._lock.release()


def _owner_path(folder: Path) -> Path:
    return folder / OWNER_FILE


def _read_owner(folder: Path) -> PreviousOwner:
    """The last owner's record; a store with a database but no readable owner file counts as unclean."""
    try:
        record = json.loads(_owner_path(folder).read_text(encoding="utf-8"))
        pid = record.get("pid")
        return PreviousOwner(pid if isinstance(pid, int) else None, record.get("open") is False)
    except (OSError, ValueError, AttributeError):
        has_data = any(entry.name != LOCK_FILE for entry in folder.iterdir())
        return PreviousOwner(None, closed_cleanly=not has_data)


def _write_owner(folder: Path, is_open: bool) -> None:
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "open": is_open,
    }
    staged = folder / f"{OWNER_FILE}.tmp"
    with staged.open("w", encoding="utf-8") as file:
        json.dump(record, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(staged, _owner_path(folder))


def _in_use_message(folder: Path) -> str:
    holder = "another process"
    with contextlib.suppress(OSError, ValueError, AttributeError):
        record = json.loads(_owner_path(folder).read_text(encoding="utf-8"))
        holder = f"process {record['pid']} on {record['host']} (since {record['since']})"
    return (
        f"the memory store in {folder} is in use by {holder}; an embedded store has one owner at a time. "
        "Stop that process, give this one another memory_store.path (or memory block), or share the store "
        "through a Chroma server: `chroma run --path DIR` and memory_store.client: http"
    )
