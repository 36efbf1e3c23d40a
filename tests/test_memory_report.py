"""machine/process/memory_report.py: the line that says where the runtime's memory is."""

from __future__ import annotations

import logging
import sys
import time
import tracemalloc

import pytest

from machine.process.memory_report import MemoryReporter, malloc_figures, report_line


def test_the_line_names_the_source_line_that_grew() -> None:
    tracemalloc.start()
    try:
        baseline = tracemalloc.take_snapshot()
        kept = [bytearray(1024) for _ in range(2048)]  # 2 MB from this line
        line = report_line(baseline)
    finally:
        tracemalloc.stop()
    assert kept
    assert line.startswith("rss ")
    grew = line.split("grew most: ", 1)[1].split("; ")[0]
    assert grew.startswith(f"{__file__}:")
    assert float(grew.split(" +", 1)[1].removesuffix(" MB")) >= 2.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallinfo2")
def test_malloc_figures_see_an_allocation() -> None:
    before = malloc_figures()
    kept = [bytearray(4096) for _ in range(2560)]  # 10 MB in blocks too big for Python's own allocator
    after = malloc_figures()
    assert kept and before is not None and after is not None
    assert after.in_use - before.in_use > 8.0


def test_the_reporter_logs_until_stopped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "machine.process.memory_report")
    reporter = MemoryReporter(every_s=0.05).start()
    try:
        deadline = time.monotonic() + 10
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        reporter.stop()
    assert caplog.records[0].getMessage().startswith("memory: rss ")
