"""Three minutes of `bench/soak.py` in `make test`: the runtime as its own process on PulseAudio null
sinks, a different spoken question every 20-30 s, its resident memory sampled from outside between
turns. It fails on a clear leak, not on the hour-long goals (those are the benchmark's, README)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_modules import bench_module

from machine.settings import load_settings

pytestmark = [pytest.mark.slow, pytest.mark.audio, pytest.mark.models, pytest.mark.e2e, pytest.mark.posix]

LEAK_MB_PER_MIN = 5.0


@pytest.mark.xfail(
    strict=False,
    reason="open defect (issue #26 closing note): a turn's buffers swing the resident size by tens of MB, "
    "more than three minutes can average out; on 2026-12-07 it passed 2 of 4 runs, and failed at 55 and 12 "
    "MB/min (the hour: 1.2 MB/min)",
)
def test_three_minutes_of_conversation_leak_no_memory(tmp_path: Path) -> None:
    soak = bench_module("soak")
    result = soak.run_soak(
        load_settings(None), hours=0.05, with_social=False, scratch=tmp_path, warm_up_s=45.0
    )

    idle = result["memory"]["runtime_idle"]
    print(f"between turns: {idle}, all samples: {result['memory']['runtime']}")
    assert result["utterances"] >= 6 and result["turns"] >= result["utterances"] - 1, result["outcomes"]
    assert idle["growth_mb_per_min_after_warm_up"] <= LEAK_MB_PER_MIN, result["samples"][
        "runtime_idle_rss_mb"
    ]
    assert result["store_mb_after_forget"] <= result["store_mb_start"] + 0.05, (
        "a forgotten session left files"
    )
