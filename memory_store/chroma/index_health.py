"""Is a block's vector index usable? Checked before this process lets Chroma load it.

Chroma writes a block's HNSW index (`header.bin`, `data_level0.bin`, `length.bin`, `link_lists.bin`)
about once per 1,000 memories. A process killed during that write leaves files that either stop the
store from opening (`InternalError: Failed to apply logs to the hnsw segment writer`) or make the first
query segfault (a `link_lists.bin` of terabytes, mostly holes). Two checks find them:

- `damaged_index_files`: the files must agree with their header (cheap; every open);
- `probe_collections`: a child process opens the store and asks each block for some of its own vectors
  back (a crash there cannot take this process down); used when the last owner did not close cleanly.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

logger = logging.getLogger(__name__)

HEADER = struct.Struct("<iQQQQQQiIQQQdQ")
"""hnswlib's `header.bin`: version, level-0 offset, capacity, element count, bytes per element, label
offset, data offset, top level, entry point, maxM, maxM0, M, level multiplier, ef_construction."""
PROBE_TIMEOUT_S = 120.0


class IndexHeader(NamedTuple):
    """What the checks and the purge need from a vector-index folder's `header.bin`."""

    capacity: int
    elements: int
    bytes_per_element: int
    top_level: int
    max_m: int


def index_header(raw: bytes) -> IndexHeader | None:
    """The header in the bytes of a `header.bin`; None when they are too short to hold one."""
    if len(raw) < HEADER.size:
        return None
    fields = HEADER.unpack(raw[: HEADER.size])
    return IndexHeader(fields[2], fields[3], fields[4], fields[7], fields[9])


def vector_segments(database: Path) -> dict[str, str]:
    """Collection name -> the id (= folder name) of its vector segment, read from Chroma's SQLite file."""
    with contextlib.closing(sqlite3.connect(database, timeout=30.0)) as db:
        rows = db.execute(
            "SELECT collections.name, segments.id FROM segments "
            "JOIN collections ON segments.collection = collections.id WHERE segments.scope = 'VECTOR'"
        ).fetchall()
    return {str(name): str(segment) for name, segment in rows}


def damaged_index_files(segment: Path) -> str | None:
    """Why the index files in `segment` cannot be right, or None when they agree (or are not written yet)."""
    header = segment / "header.bin"
    if not header.exists():
        return None
    raw = header.read_bytes()
    read = index_header(raw)
    if read is None:
        return f"header.bin has {len(raw)} bytes, not {HEADER.size}"
    capacity, count, per_element, top_level, max_m = read
    sizes = {}
    for name in ("data_level0.bin", "length.bin", "link_lists.bin"):
        path = segment / name
        if not path.is_file():
            return f"{name} is missing"
        sizes[name] = path.stat().st_size
    links_bound = count * max(top_level, 0) * (max_m * 4 + 4)
    problems = [
        (count > capacity, f"{count} elements in a capacity of {capacity}"),
        (sizes["data_level0.bin"] < count * per_element, "data_level0.bin is shorter than its elements"),
        (
            not count * 4 <= sizes["length.bin"] <= capacity * 4,
            f"length.bin holds {sizes['length.bin'] // 4} entries for {count} elements",
        ),
        (sizes["link_lists.bin"] > links_bound, f"link_lists.bin has {sizes['link_lists.bin']:,} bytes"),
        (_is_sparse(segment / "link_lists.bin"), "link_lists.bin is mostly holes"),
    ]
    return next((why for wrong, why in problems if wrong), None)


def _is_sparse(path: Path) -> bool:
    stat = path.stat()
    allocated = getattr(stat, "st_blocks", None)  # not on Windows
    return allocated is not None and stat.st_size > 1 << 20 and allocated * 512 < stat.st_size // 2


def probe_collections(folder: Path, names: list[str]) -> dict[str, str]:
    """Collection name -> why it is damaged, for the `names` a child process could not query correctly.

    The child (`python -m memory_store.chroma.index_probe`) reports each collection before and after probing
    it; when it dies or hangs, the collection it was on is damaged and the rest are probed again.
    """
    damaged: dict[str, str] = {}
    remaining = list(names)
    while remaining:
        command = [sys.executable, "-m", "memory_store.chroma.index_probe", str(folder), *remaining]
        current, reported = None, set()
        try:
            finished = subprocess.run(
                command,
                check=False,
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_S,
            )
            lines, ending = finished.stdout.splitlines(), f"exit status {finished.returncode}"
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or b""
            lines = (out.decode() if isinstance(out, bytes) else out).splitlines()
            ending = f"no answer in {PROBE_TIMEOUT_S:.0f} s"
        for line in lines:
            kind, _, rest = line.partition(" ")
            name, _, why = rest.partition(" ")
            if kind == "probing":
                current = name
            elif kind in ("ok", "damaged"):
                reported.add(name)
                current = None
                if kind == "damaged":
                    damaged[name] = why
        if current is not None:
            damaged[current] = f"querying it stopped the probe ({ending})"
            reported.add(current)
        elif not reported:
            logger.warning("the index probe of %s failed to start (%s); indexes unchecked", folder, ending)
            break
        remaining = [name for name in remaining if name not in reported]
    return damaged
