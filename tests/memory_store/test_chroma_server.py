"""Memory through a real Chroma server (`chroma run`, `client: http`): a runtime and an expiry worker in
separate clients share sessions through the store; an unreachable server is a clear error."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from memory_fakes import FakeClock, WordHashEmbedder

from memory_store import MemoryStoreError, MemoryStoreSettings, MemorySystem
from memory_store.chroma.block_records import seq_of

IDLE = 600.0
CHROMA = shutil.which("chroma") or str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "chroma")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port, folder = free_port(), tmp_path_factory.mktemp("chroma-server")
    server = subprocess.Popen(
        [CHROMA, "run", "--path", str(folder / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and server.poll() is None, "chroma run did not start"
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def http_settings(port: int) -> MemoryStoreSettings:
    return MemoryStoreSettings(
        client="http",
        server={"port": port},
        recall={"window_size": 1, "min_similarity": 0.7},  # word-hash vectors: "I love kites" vs boats 0.67
        sessions={"idle_timeout_s": IDLE, "activity_write_interval_s": 5.0},
    )


def test_a_worker_ends_the_runtimes_idle_session_through_the_server(server_port: int) -> None:
    clock = FakeClock()
    runtime = MemorySystem.open(http_settings(server_port), clock=clock, embedder=WordHashEmbedder())
    worker = MemorySystem.open(http_settings(server_port), clock=clock, embedder=WordHashEmbedder())
    block = runtime.block("celeste")
    for topic in ("kites", "boats", "trains"):
        block.remember(f"I love {topic}", f"{topic} are fun")
    assert [m.question for m in block.context("I love kites").recollections] == ["I love kites"]

    clock.advance(300)
    block.touch()  # noise heard: written to the server, where the worker reads it
    clock.advance(IDLE - 1)
    assert worker.expire_idle_sessions() == []
    clock.advance(2)
    assert worker.expire_idle_sessions() == ["celeste"]

    assert block.context("I love kites").window == ()
    fresh = block.remember("new session", "hello again")
    assert fresh is not None and seq_of(fresh.id) == 0
    runtime.close()
    worker.close()


def test_an_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(
        MemoryStoreError, match=r"cannot reach the Chroma server at 127.0.0.1:\d+ .*chroma run"
    ):
        MemorySystem.open(http_settings(free_port()), embedder=WordHashEmbedder())
