"""The malloc arena cap, observed in the arenas glibc really creates; large blocks reused, observed in the
page faults a child process takes.

What `limit_malloc_arenas` changes is how many arenas glibc hands out to threads; the resident-size effect it
is there for builds up over many turns and belongs in a benchmark. So each test runs a fresh child process
that starts threads which all malloc while every one of them is still alive (each would get an arena of its
own), and counts the arenas in glibc's own report (`malloc_stats()` prints one "Arena N:" line per arena).
The same child without the cap is the control: it shows the count can exceed the cap, so the test can fail.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's")

REPO = Path(__file__).resolve().parents[1]
THREADS = 8

CHILD = f"""
import ctypes, ctypes.util, sys, threading
from machine.process.malloc_arenas import limit_malloc_arenas

if sys.argv[1] == "cap":
    print(limit_malloc_arenas(2))
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
allocated = threading.Barrier({THREADS} + 1)
release = threading.Event()

def work():
    libc.malloc(4096)  # a thread's first malloc picks its arena: a new one unless the cap is reached
    allocated.wait(30)
    release.wait(30)

threads = [threading.Thread(target=work) for _ in range({THREADS})]
for thread in threads:
    thread.start()
allocated.wait(30)  # every thread has its arena and is still alive, so none has been handed back
libc.malloc_stats()  # to stderr: "Arena 0:", "Arena 1:", ...
release.set()
for thread in threads:
    thread.join()
"""


def run_child(mode: str, arena_max: str | None = None) -> tuple[str, int]:
    """The child's stdout (what `limit_malloc_arenas` returned) and the number of arenas it used."""
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    if arena_max is not None:
        env["MALLOC_ARENA_MAX"] = arena_max
    child = subprocess.run(
        [sys.executable, "-c", CHILD, mode],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # anti-hang bound only
        check=True,
    )
    return child.stdout.strip(), len(re.findall(r"^Arena \d+:", child.stderr, flags=re.MULTILINE))


def test_the_cap_limits_the_arenas_threads_get() -> None:
    _, uncapped = run_child("none")
    assert uncapped > 2, "without the cap the threads get arenas of their own (else this test proves nothing)"
    returned, capped = run_child("cap")
    assert returned == "True"
    assert capped == 2, f"{THREADS} threads share 2 arenas once capped"


def test_an_explicit_environment_setting_wins() -> None:
    returned, arenas = run_child("cap", arena_max="4")
    assert returned == "False"
    assert arenas == 4, "MALLOC_ARENA_MAX=4 is kept, not lowered to the default cap of 2"


LARGE_BLOCKS_CHILD = """
import ctypes, ctypes.util, sys
from machine.process.malloc_arenas import reuse_large_blocks

if sys.argv[1] == "reuse":
    print(reuse_large_blocks())
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
SIZE = 54 * 2**20  # whisper's attention scores for its 30 s window, one layer

def minor_faults():
    with open("/proc/self/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[7])

counts = []
for _ in range(3):  # a block freed after one turn and allocated again in the next
    before = minor_faults()
    block = libc.malloc(SIZE)
    ctypes.memset(block, 1, SIZE)
    counts.append(minor_faults() - before)
    libc.free(block)
print(counts[-1])
"""


def faults_of_a_reallocated_block(mode: str, **env_overrides: str) -> tuple[str, int]:
    """What `reuse_large_blocks` returned in a child, and the page faults its third 54 MB block took."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    child = subprocess.run(
        [sys.executable, "-c", LARGE_BLOCKS_CHILD, mode],
        cwd=REPO,
        env={**env, **env_overrides},
        capture_output=True,
        text=True,
        timeout=60,  # anti-hang bound only
        check=True,
    )
    lines = child.stdout.split()
    return (lines[0] if mode == "reuse" else ""), int(lines[-1])


def test_a_large_block_freed_and_allocated_again_is_not_faulted_in_again() -> None:
    _, unmapped = faults_of_a_reallocated_block("none")
    assert unmapped > 10_000, "glibc's default maps a 54 MB block afresh (else this test proves nothing)"
    returned, reused = faults_of_a_reallocated_block("reuse")
    assert returned == "True"
    assert reused < 100, f"the freed block is reused from the heap, not faulted in again ({reused} faults)"


def test_an_explicit_mmap_setting_wins() -> None:
    returned, faults = faults_of_a_reallocated_block("reuse", MALLOC_MMAP_MAX_="65536")
    assert returned == "False"
    assert faults > 10_000, "the environment's setting is kept"
