"""Underruns of the output device as a reply plays (machine/audio/playback.py), with PortAudio simulated:
the callbacks are called as the device calls them, on a clock the test moves."""

from __future__ import annotations

import threading

import numpy as np
import pyaudio
import pytest
from test_windows_devices import WindowsPortAudio

from machine.audio import playback
from machine.audio.playback import DeviceSink
from machine.settings import LiveAudioSettings
from machine.shared.levels import PlaybackLevels

BLOCK_S = 0.02
TIMING = {"output_buffer_dac_time": 0.0, "current_time": 0.0}


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def monotonic(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(playback.time, "monotonic", fake.monotonic)
    return fake


def _reply(audio: WindowsPortAudio) -> DeviceSink:
    sink = DeviceSink(audio, LiveAudioSettings(output_device="CABLE Input"), PlaybackLevels())
    sink.begin_reply(48_000)
    sink.play(np.full(9_600, 0.1, dtype=np.float32), threading.Event())  # 0.2 s: 10 blocks, all queued
    return sink


def _call(audio: WindowsPortAudio, clock: _Clock, after_s: float, status: int = 0) -> None:
    clock.t += after_s
    audio.streams[0].callback(None, 960, TIMING, status)


def test_the_underflows_of_a_new_stream_filling_its_buffer_are_no_underruns(clock: _Clock) -> None:
    """PulseAudio's ALSA plugin flags every callback of a new stream's first fill (back to back, before
    anything was played) as an underflow: every first reply of a run counted dozens of underruns."""
    audio = WindowsPortAudio()
    sink = _reply(audio)
    _call(audio, clock, 0.001)
    for _ in range(25):  # the fill: a block every millisecond, each flagged
        _call(audio, clock, 0.001, pyaudio.paOutputUnderflow)
    for _ in range(20):  # then the device's own pace
        _call(audio, clock, BLOCK_S)
    assert sink.end_reply(threading.Event()).underruns == 0
    sink.close()


def test_an_underflow_once_the_stream_plays_at_its_pace_counts(clock: _Clock) -> None:
    audio = WindowsPortAudio()
    sink = _reply(audio)
    _call(audio, clock, 0.001)
    for _ in range(5):
        _call(audio, clock, BLOCK_S)
    _call(audio, clock, 0.1, pyaudio.paOutputUnderflow)  # the device ran dry mid-reply
    for _ in range(3):  # and refilled, back to back
        _call(audio, clock, 0.001, pyaudio.paOutputUnderflow)
    for _ in range(2):  # the rest of the reply, and the queue found empty
        _call(audio, clock, BLOCK_S)
    assert sink.end_reply(threading.Event()).underruns == 4
    sink.close()
