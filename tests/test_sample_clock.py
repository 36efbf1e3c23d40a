"""The sample clock stamps audio by the stream's sample count: callbacks that run late by a random 0-40 ms
(the scheduler, the GIL) do not move the stamps; a drifting device clock is followed; a glitch restarts it."""

from __future__ import annotations

import numpy as np
import pytest

from machine.audio.sample_clock import SampleClock

BLOCK_S = 0.02


def test_late_callbacks_do_not_jitter_the_stamps() -> None:
    rng = np.random.default_rng(3)
    clock = SampleClock()
    start = 100.0
    errors = []
    for n in range(1, 500):  # 10 s of 20 ms blocks
        audio_s = n * BLOCK_S
        clock.observe(audio_s, start + audio_s + rng.uniform(0.0, 0.04))
        stamp = clock.time_at(audio_s - BLOCK_S / 2)
        assert stamp is not None
        errors.append(stamp - (start + audio_s - BLOCK_S / 2))
    settled = np.abs(errors[50:])  # after the first second
    assert settled.max() < 0.003, "within 3 ms of the true time, against up to 40 ms of callback lateness"


def test_a_device_clock_that_drifts_is_followed_and_a_restart_forgets_the_origin() -> None:
    clock = SampleClock(window_s=2.0)
    drift = 1.001  # the device's second is 1 ms longer than the system's
    for n in range(1, 3000):  # 60 s
        clock.observe(n * BLOCK_S, 10.0 + n * BLOCK_S * drift)
    stamp = clock.time_at(2999 * BLOCK_S)
    assert stamp == pytest.approx(10.0 + 2999 * BLOCK_S * drift, abs=0.005)  # 60 ms off without following
    clock.restart()
    assert clock.time_at(1.0) is None
    clock.observe(1.0, 50.0)
    assert clock.time_at(1.5) == pytest.approx(50.5)
