"""Fixtures of the memory-store tests: settings on a temporary store folder, clocks, embedders.

They live here, not in conftest.py, so that mypy checks them: it knows one module per name, and
tests/conftest.py is the `conftest` it sees. tests/memory_store/conftest.py only imports them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from memory_fakes import FakeClock, OpenSystem, WordHashEmbedder, settings_for

from memory_store import Embedder, MemorySystem, SentenceTransformerEmbedder


@pytest.fixture(autouse=True)
def settings_from_the_test_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MEMORY_STORE_* variable from the environment (or a wider fixture) overrides a test's settings."""
    for name in [name for name in os.environ if name.startswith("MEMORY_STORE_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def minilm() -> SentenceTransformerEmbedder:
    """The bundled all-MiniLM-L6-v2, loaded once for the whole run."""
    embedder = SentenceTransformerEmbedder()
    embedder.embed(["load the model"])
    return embedder


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "memory"


@pytest.fixture
def open_system(store_dir: Path, clock: FakeClock) -> Iterator[OpenSystem]:
    """Opens memory systems on the test's store folder (word-hash embedder by default); closes them."""
    opened: list[MemorySystem] = []

    def open_(embedder: Embedder | None = None, **overrides: Any) -> MemorySystem:
        system = MemorySystem.open(
            settings_for(store_dir, **overrides), clock=clock, embedder=embedder or WordHashEmbedder()
        )
        opened.append(system)
        return system

    yield open_
    for system in opened:
        system.close()
