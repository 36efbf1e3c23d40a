"""Spoken sentences with a pause in the middle ("I was thinking … about getting a dog"): the sentence is
synthesised in one go, with a comma where the speaker pauses, so the words before the pause carry the
intonation of a sentence that goes on; the comma's short gap is then stretched to the pause wanted."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from machine.ports import SAMPLE_RATE

_WINDOW = SAMPLE_RATE // 20  # 50 ms energy window
_QUIET = 0.02  # a gap is where the windowed RMS is under 2 % of the sentence's loudest


def with_pause(
    speak: Callable[[str], np.ndarray], before: str, after: str, pause_s: float
) -> tuple[np.ndarray, int]:
    """`before, after` spoken at 16 kHz with a pause of `pause_s` after `before`; also returns the sample
    where the pause starts."""
    text = f"{before.rstrip(',')}, {after}"
    audio = speak(text)
    rms = np.sqrt(np.convolve(np.square(audio, dtype=np.float64), np.ones(_WINDOW) / _WINDOW, "same"))
    expected = int(len(audio) * (len(before) + 1) / len(text))
    lo, hi = max(_WINDOW, expected - len(audio) // 5), min(len(audio) - _WINDOW, expected + len(audio) // 5)
    centre = lo + int(np.argmin(rms[lo:hi]))
    quiet = rms < _QUIET * rms.max()
    start, end = centre, centre
    while start > 0 and quiet[start - 1]:
        start -= 1
    while end < len(audio) and quiet[end]:
        end += 1
    gap = np.zeros(int(pause_s * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([audio[:start], gap, audio[end:]]).astype(np.float32), start
