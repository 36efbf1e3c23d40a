"""The session-expiry flow under `prefect_test_harness`, as a deployment runs it: its own connection to the
store, from the configuration. (The runtime's in-process timer is tested in tests/memory_store.)"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.testing.utilities import prefect_test_harness

from flows.orchestration.session_expiry import expire_idle_sessions
from memory_store import MemoryStoreSettings, MemorySystem, load_settings
from memory_store.chroma.chroma_store import ChromaStore
from memory_store.embedding import Vectors, embed_memories

pytestmark = pytest.mark.slow  # starts a Prefect test server (seconds)

IDLE_S = 600.0


class LengthEmbedder:
    """A stand-in embedder (expiry never embeds; remembering needs some vector)."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        vectors = np.zeros((len(texts), 384), dtype=np.float32)
        vectors[:, 0] = 1.0
        return vectors


@pytest.fixture(scope="module", autouse=True)
def prefect_api() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration file with a store of the test's own (no MEMORY_STORE_* variable overrides it)."""
    for name in [name for name in os.environ if name.startswith("MEMORY_STORE_")]:
        monkeypatch.delenv(name)
    path = tmp_path / "companion.yaml"
    path.write_text(
        f"memory_store:\n  path: memory\n  sessions:\n    idle_timeout_s: {IDLE_S}\n", encoding="utf-8"
    )
    return path


def completed_expiry_runs() -> int:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["session-expiry"])))
    return sum(1 for run in runs if run.state is not None and run.state.is_completed())


def stored_blocks(settings: MemoryStoreSettings) -> set[str]:
    store = ChromaStore.open(settings, partial(embed_memories, LengthEmbedder()))
    try:
        return set(store.last_activity_by_block())
    finally:
        store.close()


def remember_at(settings: MemoryStoreSettings, block: str, when: float) -> None:
    system = MemorySystem.open(settings, clock=lambda: when, embedder=LengthEmbedder())
    system.block(block).remember(f"what {block} heard", "and said")
    system.close()


def test_the_deployed_flow_ends_idle_sessions_and_its_run_shows_in_the_api(config: Path) -> None:
    settings = load_settings(config)
    remember_at(settings, "idle-bot", time.time() - 2 * IDLE_S)
    remember_at(settings, "busy-bot", time.time())
    runs_before = completed_expiry_runs()

    ended = expire_idle_sessions(config_path=str(config))

    assert ended == ["idle-bot"]
    assert stored_blocks(settings) == {"busy-bot"}
    assert completed_expiry_runs() == runs_before + 1


def test_a_store_held_by_the_runtime_is_left_to_it_and_the_run_completes(config: Path) -> None:
    """`python -m flows serve` beside `python -m machine` on one machine, with the embedded store: the
    runtime owns the folder (and expires its own sessions); the served flow completes without touching it."""
    settings = load_settings(config)
    remember_at(settings, "idle-bot", time.time() - 2 * IDLE_S)
    runtime = MemorySystem.open(settings, embedder=LengthEmbedder())  # holds the folder, as the runtime does
    runs_before = completed_expiry_runs()
    try:
        ended = expire_idle_sessions(config_path=str(config))
    finally:
        runtime.close()

    assert ended == []
    assert completed_expiry_runs() == runs_before + 1
    assert stored_blocks(settings) == {"idle-bot"}  # the runtime's own timer ends it, not this run
