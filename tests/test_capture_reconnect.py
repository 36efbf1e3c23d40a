"""A lost input device is reopened with one short log line per attempt, not the configuration error."""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

import pytest

from machine.audio.capture import DeviceSource
from machine.ports import AudioChunk, DeviceNotFoundError
from machine.settings import LiveAudioSettings

_CABLE = {
    "index": 0,
    "name": "CABLE Output",
    "hostApi": 0,
    "maxInputChannels": 2,
    "maxOutputChannels": 0,
    "defaultSampleRate": 48_000.0,
}


class _Stream(Protocol):
    """What the capture calls on the stream a fake PyAudio opens."""

    def start_stream(self) -> None: ...

    def is_active(self) -> bool: ...

    def close(self) -> None: ...


class _StoppedStream:
    """A stream that has stopped at once: the device went away under it."""

    def start_stream(self) -> None:
        pass

    def is_active(self) -> bool:
        return False

    def close(self) -> None:
        pass


class _FakePyAudio:
    """PyAudio with one input device that the test can unplug and plug in again."""

    def __init__(self) -> None:
        self.plugged = True
        self.opened = 0

    def get_device_count(self) -> int:
        return 1 if self.plugged else 0

    def get_device_info_by_index(self, index: int) -> dict[str, Any]:
        return _CABLE

    def get_host_api_info_by_index(self, index: int) -> dict[str, Any]:
        return {"name": "ALSA"}

    def get_default_input_device_info(self) -> dict[str, Any]:
        if not self.plugged:
            raise OSError(-9996, "No Default Input Device Available")
        return _CABLE

    def is_format_supported(self, rate: int, **kwargs: Any) -> bool:
        return True

    def open(self, **kwargs: Any) -> _Stream:
        self.opened += 1
        return _StoppedStream()


def _nothing(chunk: AudioChunk) -> None:
    pass


def _listening(timeout: float) -> bool:
    return True


def test_each_reconnect_attempt_logs_one_short_line(caplog: pytest.LogCaptureFixture) -> None:
    audio = _FakePyAudio()
    stopping = threading.Event()
    interruptions: list[int] = []

    def interrupted() -> None:
        interruptions.append(audio.opened)
        # lost once (the stream stopped), then the device is missing for two attempts, then it is back
        audio.plugged = len(interruptions) >= 3
        if len(interruptions) == 4:
            stopping.set()

    settings = LiveAudioSettings(input_device="CABLE", reopen_initial_s=0.001, reopen_max_s=0.001)
    source = DeviceSource(audio, settings, on_interrupted=interrupted)
    with caplog.at_level(logging.INFO, logger="machine.audio.capture"):
        source.run(_nothing, _listening, stopping)

    lost = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert lost == [
        "input device lost (the stream stopped), reopening in 0.0 s (attempt 1)",
        "input device lost (no input device matches 'CABLE'), reopening in 0.0 s (attempt 2)",
        "input device lost (no input device matches 'CABLE'), reopening in 0.0 s (attempt 3)",
        "input device lost (the stream stopped), reopening in 0.0 s (attempt 1)",
    ]
    assert source.reopened == 1
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "input device reopened (attempt 3)" in infos


def test_a_device_missing_at_the_first_open_is_a_configuration_error() -> None:
    audio = _FakePyAudio()
    audio.plugged = False
    with pytest.raises(DeviceNotFoundError) as raised:
        DeviceSource(audio, LiveAudioSettings(input_device="CABLE"), on_interrupted=lambda: None)
    message = str(raised.value)
    assert "Set it to `default`" in message and "The input devices are:" in message
    assert raised.value.reason == "no input device matches 'CABLE'"
