"""The runtime's memory over its lifetime: forgotten when it stops (`sessions.forget_on_exit`), expired
sessions purged at open, `--fresh`, and the demo's own block. Real Chroma; a word-hash embedder instead
of all-MiniLM-L6-v2 (recall quality does not matter here)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from chat_fakes import ConversationStandIn

from machine.__main__ import main
from machine.app import Parts
from machine.backends.infinimemory import BlockMemory, open_memory
from machine.ports import AudioSink, ConversationMemory
from machine.runs.demo import demo_block, run_demo
from machine.settings import MachineSettings
from memory_store import MemoryStoreSettings, MemorySystem
from memory_store import load_settings as load_memory_settings
from memory_store.chroma.forgetting import SQLITE_FILE
from memory_store.settings import SessionSettings

REPO = Path(__file__).resolve().parents[1]
CANARY = "My locker code is marmalade-47 behind the blue bridge"
ANSWER = "I will keep that locker code to myself"


class HashEmbedder:
    """Bag of words hashed into 384 dimensions (no model to load)."""

    def __init__(self, *args: object) -> None:
        pass

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), 384), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                vectors[row, int(hashlib.sha1(word.encode()).hexdigest(), 16) % 384] += 1.0
            vectors[row, 0] += 0.1
            vectors[row] /= np.linalg.norm(vectors[row])
        return vectors


@pytest.fixture(autouse=True)
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every MemorySystem opened here embeds with `HashEmbedder`."""
    monkeypatch.setattr("memory_store.system.SentenceTransformerEmbedder", HashEmbedder)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def on(store: Path, settings: MemoryStoreSettings, **sessions: Any) -> MemoryStoreSettings:
    """`settings` on the store folder `store`, with `sessions` overrides (validated: unknown keys fail)."""
    checked = SessionSettings.model_validate({**settings.sessions.model_dump(), **sessions})
    return settings.model_copy(update={"path": store, "sessions": checked})


def files_holding(folder: Path, text: str) -> list[str]:
    """The files under `folder` whose raw bytes contain `text`."""
    needle = text.encode()
    return [str(path) for path in sorted(folder.rglob("*")) if path.is_file() and needle in path.read_bytes()]


def sqlite_holds(folder: Path, text: str) -> bool:
    """True when the store's SQLite file (or its journal) holds `text` in its raw bytes."""
    return any(text.encode() in path.read_bytes() for path in folder.glob(f"{SQLITE_FILE}*"))


def window_of(settings: MemoryStoreSettings, block: str) -> list[str]:
    """The questions a new runtime would see as history in `block` (without forgetting it at exit)."""
    with open_memory(on(settings.path, settings, forget_on_exit=False), block) as memory:
        return [exchange.question for exchange in memory.context("anything").window]


# --- forget on exit ----------------------------------------------------------------------------------


def test_the_session_is_purged_from_the_store_files_when_the_runtime_stops(
    memory_settings: MemoryStoreSettings, store: Path
) -> None:
    settings = on(store, memory_settings)
    assert settings.sessions.forget_on_exit, "on by default"
    with open_memory(settings, "celeste") as memory:
        memory.remember(CANARY, ANSWER)
        assert sqlite_holds(store, CANARY), "the exchange must be on disk while the runtime runs"

    assert not sqlite_holds(store, CANARY)
    assert files_holding(store, CANARY) == []
    assert files_holding(store, "locker code") == []
    assert window_of(settings, "celeste") == []


def test_an_error_in_the_runtime_still_forgets_before_the_store_closes(
    memory_settings: MemoryStoreSettings, store: Path
) -> None:
    settings = on(store, memory_settings)
    with pytest.raises(RuntimeError, match="turn failed"), open_memory(settings, "celeste") as memory:
        memory.remember(CANARY, ANSWER)
        raise RuntimeError("turn failed")

    assert files_holding(store, CANARY) == []


def test_with_forget_on_exit_off_the_next_run_carries_on(
    memory_settings: MemoryStoreSettings, store: Path
) -> None:
    settings = on(store, memory_settings, forget_on_exit=False)
    with open_memory(settings, "celeste") as memory:
        memory.remember(CANARY, ANSWER)

    assert sqlite_holds(store, CANARY)
    assert window_of(settings, "celeste") == [CANARY]


SIGTERM_CHILD = textwrap.dedent(
    """
    import sys, threading
    import numpy as np
    import memory_store.system
    from machine.backends.infinimemory import open_memory
    from machine.process.stop_signals import StopSignals
    from memory_store import MemoryStoreSettings

    class OneVector:
        def __init__(self, *args):
            pass

        def embed(self, texts):
            return np.eye(1, 384, dtype=np.float32).repeat(len(texts), axis=0)

    memory_store.system.SentenceTransformerEmbedder = OneVector
    with StopSignals(), open_memory(MemoryStoreSettings(), "celeste") as memory:
        memory.remember(sys.argv[1], "noted")
        print("ready", flush=True)
        threading.Event().wait()  # until a signal
    """
)


@pytest.mark.posix
def test_sigterm_to_a_recorded_run_forgets_before_the_process_ends(store: Path, tmp_path: Path) -> None:
    environment = {**os.environ, "MEMORY_STORE_PATH": str(store), "PYTHONPATH": str(REPO)}
    log = tmp_path / "child.log"
    with log.open("w") as errors:
        child = subprocess.Popen(
            [sys.executable, "-c", SIGTERM_CHILD, CANARY],
            cwd=REPO,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n", log.read_text()
        assert files_holding(store, CANARY), "the exchange must be on disk before the signal"
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=120)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()

    assert child.returncode == 128 + signal.SIGTERM, log.read_text()
    assert files_holding(store, CANARY) == [], log.read_text()


# --- an expired session is purged at open ------------------------------------------------------------


def test_sessions_that_expired_while_no_runtime_ran_are_purged_at_open(
    memory_settings: MemoryStoreSettings, store: Path
) -> None:
    settings = on(store, memory_settings, forget_on_exit=False)
    idle = settings.sessions.idle_timeout_s
    long_ago = time.time() - idle - 60
    earlier = MemorySystem.open(settings, clock=lambda: long_ago)  # a runtime killed long ago left these
    try:
        earlier.block("celeste").remember(CANARY, ANSWER)
        earlier.block("nova").remember(f"Nova heard: {CANARY}", ANSWER)
    finally:
        earlier.close()
    recent = MemorySystem.open(settings)
    try:
        recent.block("orion").remember("Orion's talk goes on", "Still here")
    finally:
        recent.close()
    assert sqlite_holds(store, CANARY) and sqlite_holds(store, "Nova heard")

    with open_memory(settings, "celeste") as memory:
        assert memory.context("locker code").window == ()
        assert files_holding(store, CANARY) == [], "every expired session is gone, not only this bot's"
        assert sqlite_holds(store, "Orion's talk goes on"), "a session still within its idle time stays"


# --- --fresh ----------------------------------------------------------------------------------------


def test_fresh_forgets_the_block_before_the_conversation_starts(
    memory_settings: MemoryStoreSettings, store: Path
) -> None:
    settings = on(store, memory_settings, forget_on_exit=False)
    with open_memory(settings, "celeste") as memory:
        memory.remember(CANARY, ANSWER)

    with open_memory(settings, "celeste", fresh=True) as memory:
        assert memory.context("locker code").window == ()
        assert files_holding(store, CANARY) == []


class FakeRuntime(ConversationStandIn):
    """Stands in for the runtime and its models: notes what its memory held when it was built."""

    def __init__(self, memory: BlockMemory, seen: list[tuple[str, list[str]]]) -> None:
        seen.append((memory.block.name, [exchange.question for exchange in memory.context("hi").window]))
        self.memory = memory

    def run(self, source: object, on_listening: Callable[[], None] = lambda: None) -> list[Any]:
        self.memory.remember("What's the moon made of?", "Mostly rock.")
        return []


@pytest.fixture
def runtimes() -> tuple[list[tuple[str, list[str]]], Parts]:
    """No models: the parts that make each recorded run's runtime a `FakeRuntime`, and what they saw."""
    seen: list[tuple[str, list[str]]] = []

    def build(memory: ConversationMemory, sink: AudioSink, on_turn: object) -> FakeRuntime:
        assert isinstance(memory, BlockMemory)
        return FakeRuntime(memory, seen)

    return seen, Parts(conversation=build)


@pytest.mark.parametrize("fresh", [False, True])
def test_the_fresh_flag_forgets_before_a_recorded_run(
    tmp_path: Path,
    store: Path,
    monkeypatch: pytest.MonkeyPatch,
    runtimes: tuple[list[tuple[str, list[str]]], Parts],
    fresh: bool,
) -> None:
    seen, parts = runtimes
    monkeypatch.setenv("MEMORY_STORE_PATH", str(store))
    monkeypatch.setenv("MEMORY_STORE_SESSIONS__FORGET_ON_EXIT", "false")
    with open_memory(load_memory_settings(), "celeste") as memory:  # an earlier run
        memory.remember(CANARY, ANSWER)
    question = tmp_path / "question.wav"
    soundfile.write(str(question), np.zeros(16_000, dtype=np.float32), 16_000)

    flags = ["--fresh"] if fresh else []
    assert main(["--input", str(question), "--output", str(tmp_path / "out"), "--fast", *flags], parts) == 0

    assert seen == [("celeste", [] if fresh else [CANARY])]


def test_the_fresh_flag_reaches_a_live_run(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, object]] = []
    monkeypatch.setattr("machine.runs.live.run_live", lambda *args, **kwargs: calls.append(kwargs))

    assert main(["--fresh"]) == 0
    assert main([]) == 0

    assert [call.get("fresh", False) for call in calls] == [True, False]


# --- the demo ---------------------------------------------------------------------------------------


def test_the_demo_block_is_the_bots_block_with_demo() -> None:
    assert demo_block("celeste") == "celeste-demo"
    longest = demo_block("n" * 63)
    assert len(longest) == 63 and longest.endswith("-demo")


def write_silent_questions(settings: MachineSettings, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "q01.wav"
    soundfile.write(str(path), np.zeros(16_000, dtype=np.float32), 16_000)
    return [path]


def test_the_demo_starts_fresh_in_its_own_block_and_leaves_the_bots_block_alone(
    settings: MachineSettings,
    memory_settings: MemoryStoreSettings,
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    runtimes: tuple[list[tuple[str, list[str]]], Parts],
) -> None:
    seen, parts = runtimes
    kept = on(store, memory_settings, forget_on_exit=False)
    with open_memory(kept, settings.memory_block) as memory:  # the user's real conversation
        memory.remember(CANARY, ANSWER)
    with open_memory(kept, demo_block(settings.memory_block)) as memory:  # an earlier demo
        memory.remember("Hi from an earlier demo", "Hello")
    monkeypatch.setattr("machine.runs.demo.synthesise_questions", write_silent_questions)

    run_demo(settings, kept, tmp_path / "out", realtime=False, parts=parts)

    assert seen == [(f"{settings.memory_block}-demo", [])]
    assert window_of(kept, settings.memory_block) == [CANARY]
