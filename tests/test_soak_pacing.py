"""bench/soak.py's user: the next utterance waits out the whole gap, also after a burst of noise in it."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import pytest
from bench_modules import bench_module

soak = bench_module("soak")


class FakeClock:
    """time.monotonic and time.sleep on a clock that only sleeping and playing move."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def test_every_gap_is_waited_out_even_with_noise_in_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clock = FakeClock()
    plays: list[tuple[float, str]] = []

    def play(sink: str, wav: Path) -> None:
        plays.append((clock.now, wav.name))
        clock.now += 2.0  # playing takes as long as the sound

    monkeypatch.setattr(soak, "time", SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep))
    monkeypatch.setattr(soak.pulse, "play", play)
    noise = tmp_path / "noise.wav"
    talk = soak.Talk("user", SimpleNamespace(levels=[]), SimpleNamespace(levels=[]), [noise], 0, (20.0, 30.0))
    sampler = SimpleNamespace(
        pids={"runtime": None},
        soak=soak.Soak(),
        clock=lambda: clock.now - 1000.0,
        start=1000.0,
    )
    for n in range(20):
        talk.say(soak.Utterance("small_talk", f"line {n}", tmp_path / f"line{n}.wav"), sampler)

    starts = [at for at, name in plays if name != noise.name]
    assert any(name == noise.name for _, name in plays), "some gaps hold noise"
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 20.0
