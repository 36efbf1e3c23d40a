"""Sessions: idle expiry on an injected clock, extension by input, noise and speech, reset, and forgetting
for real (the canary sentence is in no file of the store afterwards)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from memory_fakes import FakeClock, OpenSystem, WordHashEmbedder

from memory_store import MemorySystem
from memory_store.chroma.block_records import seq_of
from memory_store.chroma.chroma_store import ChromaStore
from memory_store.chroma.forgetting import zero_unused_index_slots
from memory_store.chroma.index_health import HEADER
from memory_store.embedding import embed_memories

IDLE = 600.0
SESSIONS = {"idle_timeout_s": IDLE, "activity_write_interval_s": 5.0}
CANARY = "The canary's secret is marmalade-47 under the blue bridge"


def stored_activity(system: MemorySystem) -> dict[str, float | None]:
    """What the open system's store holds (only the owner of an embedded store may read it)."""
    assert system._store is not None
    return system._store.last_activity_by_block()


def reopened_activity(system: MemorySystem) -> dict[str, float | None]:
    """What the store holds after `system` was closed, read by the next owner."""
    store = ChromaStore.open(system.settings, partial(embed_memories, WordHashEmbedder()))
    try:
        return store.last_activity_by_block()
    finally:
        store.close()


def files_holding(folder: Path, text: str) -> list[str]:
    """The files under `folder` whose raw bytes contain `text`, each with the bytes around it."""
    needle, found = text.encode(), []
    for path in sorted(folder.rglob("*")):
        content = path.read_bytes() if path.is_file() else b""
        at = content.find(needle)
        if at >= 0:
            found.append(
                f"{path.relative_to(folder)} ({len(content)} bytes) at {at}: {content[at - 40 : at + 80]!r}"
            )
    return found


def test_a_session_ends_after_the_idle_time_and_its_memories_are_forgotten(
    open_system: OpenSystem, clock: FakeClock
) -> None:
    system = open_system(sessions=SESSIONS)
    block = system.block("celeste")
    block.remember("I love kites", "Kites are fun")

    clock.advance(IDLE - 1)
    assert system.expire_idle_sessions() == []
    assert len(block.context("kites").window) == 1

    clock.advance(IDLE + 1)
    assert system.expire_idle_sessions() == ["celeste"]
    assert block.context("kites").window == ()
    first_after = block.remember("a new session", "starts empty")
    assert first_after is not None and seq_of(first_after.id) == 0


@pytest.mark.parametrize("activity", ["touch", "context", "remember"])
def test_noise_speech_and_input_extend_the_session(
    open_system: OpenSystem, clock: FakeClock, activity: str
) -> None:
    system = open_system(sessions=SESSIONS)
    block = system.block("celeste")
    block.remember("I love kites", "Kites are fun")

    clock.advance(IDLE - 10)
    {
        "touch": block.touch,
        "context": lambda: block.context("hm"),
        "remember": lambda: block.remember("a", "b"),
    }[activity]()
    clock.advance(IDLE - 10)

    assert system.expire_idle_sessions() == []
    assert block.context("kites").window[0].question == "I love kites"
    clock.advance(IDLE + 1)
    assert system.expire_idle_sessions() == ["celeste"]


def test_a_block_used_after_its_idle_time_starts_a_new_session_even_before_the_flow_runs(
    open_system: OpenSystem, clock: FakeClock
) -> None:
    block = open_system(sessions=SESSIONS).block("celeste")
    block.remember("I love kites", "Kites are fun")
    clock.advance(IDLE + 1)

    assert block.context("kites").window == ()


def test_reset_forgets_at_once(open_system: OpenSystem) -> None:
    system = open_system(sessions=SESSIONS)
    celeste, nova = system.block("celeste"), system.block("nova")
    celeste.remember("I love kites", "Kites are fun")
    nova.remember("I love boats", "Boats are fun")

    celeste.reset()

    assert set(stored_activity(system)) == {"nova"}
    assert celeste.context("kites").window == ()
    assert [m.question for m in nova.context("boats").window] == ["I love boats"]


def test_activity_reaches_the_store_throttled_and_on_close(open_system: OpenSystem, clock: FakeClock) -> None:
    system = open_system(sessions=SESSIONS)
    block = system.block("celeste")
    started = clock.now
    block.touch()
    clock.advance(2)
    block.touch()

    assert stored_activity(system) == {"celeste": started}
    clock.advance(4)
    block.touch()
    assert stored_activity(system) == {"celeste": started + 6}
    clock.advance(1)
    block.touch()
    system.close()
    assert reopened_activity(system) == {"celeste": started + 7}


@pytest.mark.parametrize("ending", ["idle", "reset"])
def test_after_the_session_ends_the_canary_is_in_no_file_of_the_store(
    open_system: OpenSystem, clock: FakeClock, store_dir: Path, ending: str
) -> None:
    system = open_system(sessions=SESSIONS)
    celeste, nova = system.block("celeste"), system.block("nova")
    for turn in range(30):
        celeste.remember(f"{CANARY} ({turn})", f"I will keep the canary's secret {turn}")
        nova.remember(f"Nova keeps this {turn}", "Noted")
    assert files_holding(store_dir, CANARY), "the canary must be on disk before the session ends"

    if ending == "reset":
        celeste.reset()
    else:
        clock.advance(IDLE / 2)
        nova.touch()
        clock.advance(IDLE / 2 + 1)
        assert system.expire_idle_sessions() == ["celeste"]

    assert files_holding(store_dir, CANARY) == []
    assert files_holding(store_dir, "canary's secret") == []
    assert files_holding(store_dir, "Nova keeps this 29")
    live_folders = [path for path in store_dir.iterdir() if path.is_dir()]
    assert len(live_folders) == 1, "the forgotten block's vector index folder must be gone"
    assert len(nova.context("Nova keeps").window) == 6


def test_unused_index_slots_are_zeroed_and_used_ones_kept(tmp_path: Path) -> None:
    per_element, used = 16, [b"A" * 16, b"B" * 16]
    header = HEADER.pack(1, 0, 4, len(used), per_element, 0, 0, 0, 0, 0, 0, 0, 0.0, 0)
    (tmp_path / "header.bin").write_bytes(header)
    (tmp_path / "data_level0.bin").write_bytes(b"".join(used) + CANARY.encode()[:32])

    (tmp_path / "length.bin").write_bytes(b"\x01\x00\x00\x00" * 2 + CANARY.encode()[:40])

    zero_unused_index_slots(tmp_path)

    assert (tmp_path / "data_level0.bin").read_bytes() == b"".join(used) + bytes(32)
    assert (tmp_path / "length.bin").read_bytes() == b"\x01\x00\x00\x00" * 2 + bytes(40), (
        "the link-list lengths past the element count are zeroed too (they held stale memory once)"
    )


def test_closing_the_store_scrubs_what_the_index_files_hold_past_their_elements(
    open_system: OpenSystem, store_dir: Path
) -> None:
    """The index writes buffers of its capacity; past its elements they hold stale process memory, which may
    be a forgotten block's text. Closing the store zeroes it in every block's index folder."""
    system = open_system(sessions=SESSIONS)
    system.block("nova").remember("Nova keeps this", "Noted")
    system.close()
    lengths = next(store_dir.rglob("length.bin"))
    size = lengths.stat().st_size
    lengths.write_bytes(lengths.read_bytes()[:4] + CANARY.encode().ljust(size - 4, b"!")[: size - 4])
    reopened = open_system(sessions=SESSIONS)
    reopened.close()
    assert files_holding(store_dir, CANARY) == []
