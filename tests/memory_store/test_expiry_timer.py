"""The runtime's session-expiry timer: a plain thread in memory_store, no Prefect in the voice process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from memory_fakes import FakeClock, WordHashEmbedder, settings_for

from memory_store import MemorySystem
from memory_store.expiry_timer import SessionExpiryTimer

REPO = Path(__file__).resolve().parents[2]


def test_the_timer_ends_idle_sessions_against_the_runtimes_own_system(
    store_dir: Path, clock: FakeClock
) -> None:
    settings = settings_for(store_dir)
    system = MemorySystem.open(settings, clock=clock, embedder=WordHashEmbedder())
    system.block("celeste").remember("my cat is called Pickles", "What a lovely name.")
    clock.advance(settings.sessions.idle_timeout_s + 1)  # only this system's clock says it is idle
    system.block("nova").remember("hello", "hi")  # another bot's session, in use
    timer = SessionExpiryTimer(system, every_s=0.05, jitter_s=0.0)
    timer.start()
    deadline = time.monotonic() + 30  # against a hang only
    while system.block("celeste").context("cat").window and time.monotonic() < deadline:
        time.sleep(0.05)
    timer.stop()
    assert system.block("celeste").context("cat").window == (), "the idle session was forgotten"
    assert system.block("nova").context("hello").window != (), "a session in use is kept"
    system.close()


@pytest.mark.slow  # a fresh interpreter imports the runtime's modules and opens the store (seconds)
def test_the_runtime_process_never_imports_prefect() -> None:
    """Opening the runtime's memory (with its timer) and building a runtime's modules loads no Prefect."""
    script = (
        "import sys, tempfile\n"
        "from pathlib import Path\n"
        "import machine.runs.live, machine.runs.recorded, machine.runs.demo, machine.app\n"
        "from machine.backends.infinimemory import open_memory\n"
        "from memory_store import load_settings\n"
        "settings = load_settings().model_copy(update={'path': Path(tempfile.mkdtemp())})\n"
        "with open_memory(settings, 'celeste') as memory:\n"
        "    memory.touch()\n"
        "loaded = sorted(name for name in sys.modules if name.split('.')[0] in ('prefect', 'flows'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
