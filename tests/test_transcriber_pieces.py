"""Audio longer than whisper's 30 s window is split at pauses, never mid-word, and nothing is lost."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from machine.ports import SAMPLE_RATE

pytestmark = pytest.mark.models  # importing whisperx loads torch


def speech_with_pauses(seconds: float, pauses_at: list[float]) -> np.ndarray:
    """A loud 'voice' (noise) with 300 ms of silence at each of `pauses_at`."""
    audio = 0.2 * np.random.default_rng(0).standard_normal(int(seconds * SAMPLE_RATE)).astype(np.float32)
    for at in pauses_at:
        audio[int(at * SAMPLE_RATE) : int((at + 0.3) * SAMPLE_RATE)] = 0.0
    return audio


def test_long_audio_is_cut_inside_its_pauses_into_windows_whisper_can_take() -> None:
    from machine.backends.whisperx_transcriber import pieces

    audio = speech_with_pauses(75.0, pauses_at=[10.0, 25.0, 49.0, 62.0])
    ranges = pieces(audio, SAMPLE_RATE)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(audio), "the pieces cover everything"
    assert all(end == start for (_, end), (start, _) in itertools.pairwise(ranges)), "no overlap gap"
    assert all(end - start <= 30 * SAMPLE_RATE for start, end in ranges)
    cuts = [end / SAMPLE_RATE for _, end in ranges[:-1]]
    assert len(cuts) == 2
    assert 25.0 < cuts[0] < 25.3 and 49.0 < cuts[1] < 49.3, f"each cut is inside a pause: {cuts}"


def test_audio_within_one_window_is_one_piece() -> None:
    from machine.backends.whisperx_transcriber import pieces

    assert pieces(np.zeros(29 * SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE) == [(0, 29 * SAMPLE_RATE)]
