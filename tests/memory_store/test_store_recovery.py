"""Recovery: a store killed while Chroma writes a block's vector index, or in the middle of a forget,
opens, recalls and remembers afterwards, loses no acknowledged memory and keeps no forgotten text; a
damaged index is rebuilt from the stored texts; a second process cannot open an embedded store.

The kill tests run a worker (`store_crash_worker.py`) that forks one child per step, and kill the child
with SIGKILL; the recovery is checked in another child, so a crash in it would fail the test rather
than take pytest down.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

import pytest
from memory_fakes import OpenSystem, WordHashEmbedder
from store_crash_worker import CANARY
from worker_process import WorkerProcess

from memory_store import MemoryStoreError, MemoryStoreSettings, MemorySystem
from memory_store.chroma.block_records import seq_of
from memory_store.chroma.chroma_store import COLLECTION_PREFIX
from memory_store.chroma.forgetting import PENDING_FILE
from memory_store.chroma.index_health import damaged_index_files, vector_segments

WORKER = Path(__file__).with_name("store_crash_worker.py")
INDEX_WRITE_AT = 21_000
"""The memory whose write makes Chroma write the block's index (it does so every 1,000)."""
pytestmark = pytest.mark.posix  # a forking worker, killed with SIGKILL

KILLS = 8


def files_holding(folder: Path, text: str) -> list[str]:
    needle = text.encode()
    return [str(path) for path in folder.rglob("*") if path.is_file() and needle in path.read_bytes()]


def run_child(worker: WorkerProcess, command: str) -> tuple[int, list[str]]:
    """Send `command`; returns the child's exit code (negative: killed by that signal) and its lines."""
    worker.send(command)
    pid, lines = worker.wait_for("pid").split()[1], []
    while not (line := worker.next_line(300)).startswith(f"reaped {pid} "):
        lines.append(line)
    return int(line.split()[2]), lines


class Verified(TypedDict):
    """What the worker's `verify` prints (see store_crash_worker.py)."""

    count: int
    numbers: list[int]
    recalled: list[int]
    remembered: bool


def verified(worker: WorkerProcess, folder: Path, first: int, recall: int) -> Verified:
    code, lines = run_child(worker, f"verify {folder} {first} {recall}")
    assert code == 0, f"opening the store after the kill ended with {code}: {lines}"
    printed = next(line for line in lines if line.startswith("verified"))
    result: Verified = json.loads(printed.split(" ", 1)[1])
    return result


@pytest.fixture(scope="module")
def worker() -> Iterator[WorkerProcess]:
    process = WorkerProcess(WORKER)
    assert process.next_line() == "ready"
    yield process
    process.close()


@pytest.mark.slow
def test_a_kill_during_an_index_write_never_breaks_the_store(worker: WorkerProcess, tmp_path: Path) -> None:
    base, chance = tmp_path / "base", random.Random(20261201)
    assert run_child(worker, f"build {base} {INDEX_WRITE_AT - 1}")[0] == 0
    outcomes = []
    for round_ in range(KILLS):
        folder = tmp_path / f"round-{round_}"
        shutil.copytree(base, folder)
        worker.send(f"write {folder} 100")
        pid = int(worker.wait_for("pid").split()[1])
        acked = set(range(INDEX_WRITE_AT - 1))
        while (line := worker.next_line()) != f"remembering {INDEX_WRITE_AT - 1}":
            if line.startswith("ack"):
                acked.add(int(line.split()[1]))
        time.sleep(chance.uniform(0.0, 0.15))
        os.kill(pid, signal.SIGKILL)
        while not (line := worker.next_line()).startswith(f"reaped {pid}"):
            if line.startswith("ack"):
                acked.add(int(line.split()[1]))
        segments = vector_segments(folder / "chroma.sqlite3")
        damage = damaged_index_files(folder / segments[COLLECTION_PREFIX + "crash"])

        result = verified(worker, folder, first=INDEX_WRITE_AT - 10, recall=12_345)

        numbers = set(result["numbers"])
        assert {n for n in acked if n >= INDEX_WRITE_AT - 10} <= numbers, "an acknowledged memory was lost"
        assert result["count"] >= max(acked) + 1
        assert numbers == set(range(INDEX_WRITE_AT - 10, int(result["count"])))
        assert 12_345 in result["recalled"]
        assert result["remembered"] is True
        outcomes.append(damage or "intact")
        shutil.rmtree(folder)
    print("index files after each kill:", outcomes)


@pytest.mark.slow  # kills the owner process
def test_a_damaged_index_is_rebuilt_from_the_stored_texts(
    worker: WorkerProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "memory"
    code, lines = run_child(worker, f"build {folder} 3000")
    assert code == 0, lines
    segment = folder / vector_segments(folder / "chroma.sqlite3")[COLLECTION_PREFIX + "crash"]
    with (segment / "link_lists.bin").open("r+b") as links:  # what a kill mid-write was seen to leave
        links.truncate(2 * 1024**4)
    assert damaged_index_files(segment) is not None

    result = verified(worker, folder, first=0, recall=1234)

    assert result["numbers"] == list(range(3000))
    assert 1234 in result["recalled"]
    assert result["remembered"] is True
    assert sum(path.stat().st_size for path in folder.rglob("*.bin")) < 100 * 1024**2


@pytest.mark.slow  # kills the owner process
def test_an_index_that_only_fails_when_queried_is_found_by_the_probe_after_a_crash(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    folder = tmp_path / "memory"
    assert run_child(worker, f"build {folder} 2000")[0] == 0
    segment = folder / vector_segments(folder / "chroma.sqlite3")[COLLECTION_PREFIX + "crash"]
    for name in ("header.bin", "data_level0.bin", "length.bin", "link_lists.bin"):
        (segment / name).unlink()  # the files agree (none written yet), but the vectors are gone
    owner = folder / "infinimemory-owner.json"
    owner.write_text(json.dumps({**json.loads(owner.read_text()), "open": True}))  # as a killed owner left it

    result = verified(worker, folder, first=1990, recall=1500)

    assert result["numbers"] == list(range(1990, 2000))
    assert 1500 in result["recalled"]


@pytest.mark.slow
def test_a_kill_during_a_forget_leaves_no_forgotten_text_after_the_next_open(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    base, chance = tmp_path / "base", random.Random(20261202)
    assert run_child(worker, f"build {base} 5000")[0] == 0
    shutil.copytree(base, tmp_path / "timing")
    worker.send(f"forget {tmp_path / 'timing'}")
    worker.wait_for("forgetting")
    began = time.monotonic()
    worker.wait_for("forgotten")
    forget_s = time.monotonic() - began
    interrupted = 0
    for round_ in range(3 * KILLS):
        folder = tmp_path / f"round-{round_}"
        shutil.copytree(base, folder)
        worker.send(f"forget {folder}")
        pid = int(worker.wait_for("pid").split()[1])
        worker.wait_for("forgetting")
        deadline = time.monotonic() + 30
        while not (folder / PENDING_FILE).exists():  # the forget has durably begun
            assert time.monotonic() < deadline, "the forget never wrote its intent"
            time.sleep(0.0005)
        time.sleep(chance.uniform(0.0, 0.8 * forget_s))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        killed = int(worker.wait_for(f"reaped {pid}").split()[2]) == -signal.SIGKILL
        interrupted += killed and (folder / PENDING_FILE).exists()

        result = verified(worker, folder, first=4990, recall=4321)

        assert files_holding(folder, CANARY) == [], f"round {round_}: forgotten text survived the reopen"
        assert files_holding(folder, "canary's secret") == []
        assert result["numbers"] == list(range(4990, 5000)), "the other block must be kept"
        assert 4321 in result["recalled"]
        assert not (folder / PENDING_FILE).exists()
        shutil.rmtree(folder)
        if interrupted == KILLS:
            break
    assert interrupted == KILLS, f"only {interrupted} kills landed inside a forget of {forget_s:.3f} s"


def test_a_second_process_cannot_open_an_embedded_store(open_system: OpenSystem, store_dir: Path) -> None:
    owner = open_system()
    owner.block("celeste").remember("I have a dog called Biscuit", "Biscuit is a great name")
    script = (
        "import sys; from pathlib import Path; from memory_store import MemoryStoreSettings, MemorySystem\n"
        "MemorySystem.open(MemoryStoreSettings(path=Path(sys.argv[1]), on_store_error='degrade'))"
    )

    second = subprocess.run(
        [sys.executable, "-c", script, str(store_dir)], check=False, capture_output=True, text=True
    )

    assert second.returncode != 0
    assert f"in use by process {os.getpid()}" in second.stderr
    assert "memory_store.client: http" in second.stderr
    assert [m.question for m in owner.block("celeste").context("dog").window] == [
        "I have a dog called Biscuit"
    ]


def test_the_store_opens_again_once_its_owner_closed_it(open_system: OpenSystem, store_dir: Path) -> None:
    first = open_system()
    first.block("celeste").remember("I play the cello", "The cello sounds warm")
    with pytest.raises(MemoryStoreError, match="in use by process"):
        MemorySystem.open(MemoryStoreSettings(path=store_dir), embedder=WordHashEmbedder())
    first.close()

    again = open_system()

    memory = again.block("celeste").context("cello").window[0]
    assert (memory.question, seq_of(memory.id)) == ("I play the cello", 0)


def test_a_healthy_small_block_is_not_taken_for_damaged(
    open_system: OpenSystem, store_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = open_system()
    for turn in range(3):
        first.block("celeste").remember(f"I like kites {turn}", "Kites are fun")
    first.close()
    segment = store_dir / vector_segments(store_dir / "chroma.sqlite3")[COLLECTION_PREFIX + "celeste"]
    assert (segment / "header.bin").exists(), "Chroma writes a fresh index at its first capacity"

    assert damaged_index_files(segment) is None
    open_system().block("celeste")
    assert "damaged" not in caplog.text and "rebuilt" not in caplog.text
