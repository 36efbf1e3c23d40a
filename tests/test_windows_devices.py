"""Choosing audio devices as Windows lists them: one physical device under MME (names cut to 31 characters),
DirectSound, WASAPI and WDM-KS; a device named by part of its name opens through WASAPI, then DirectSound,
then MME; a device that only runs at 44.1 or 48 kHz is resampled both ways; `pulse:` is Linux's only."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from machine.audio.capture import DeviceSource
from machine.audio.devices import (
    MME_NAME_LIMIT,
    DeviceInfo,
    ResolvedDevice,
    describe,
    list_devices,
    resolve,
)
from machine.audio.playback import DeviceSink
from machine.ports import CHUNK_SAMPLES, SAMPLE_RATE, AudioChunk, DeviceNotFoundError
from machine.settings import LiveAudioSettings
from machine.shared.levels import PlaybackLevels

HOST_APIS = ["MME", "Windows DirectSound", "Windows WASAPI", "Windows WDM-KS"]

CABLE_OUT = (
    "CABLE Output (VB-Audio Virtual Cable)"  # the bot's microphone: what VRChat plays into CABLE Input
)
CABLE_IN = "CABLE Input (VB-Audio Virtual Cable)"
A_OUT, A_IN = "CABLE-A Output (VB-Audio Cable A)", "CABLE-A Input (VB-Audio Cable A)"  # the A+B pack
B_OUT, B_IN = "CABLE-B Output (VB-Audio Cable B)", "CABLE-B Input (VB-Audio Cable B)"
INPUTS = [CABLE_OUT, A_OUT, B_OUT, "Microphone (Realtek(R) Audio)"]
OUTPUTS = [CABLE_IN, A_IN, B_IN, "Speakers (Realtek(R) Audio)"]


def _windows_list() -> list[dict[str, Any]]:
    """Devices in the order PortAudio lists them on Windows: by host API, inputs before outputs, with each
    API's own names (MME's cut to 31 characters, MME and DirectSound's mappers, WDM-KS's named after the
    driver's filters) and default rates (WASAPI's is the shared mixer's, the only rate it opens at)."""
    entries: list[tuple[str, int, str]] = []  # name, host API, direction
    mappers = {
        0: ("Microsoft Sound Mapper - Input", "Microsoft Sound Mapper - Output"),
        1: ("Primary Sound Capture Driver", "Primary Sound Driver"),
    }
    for api in range(4):
        if api in mappers:
            entries.append((mappers[api][0], api, "in"))
        entries += [(name[:MME_NAME_LIMIT] if api == 0 else name, api, "in") for name in INPUTS]
        if api in mappers:
            entries.append((mappers[api][1], api, "out"))
        entries += [(name[:MME_NAME_LIMIT] if api == 0 else name, api, "out") for name in OUTPUTS]
    devices: list[dict[str, Any]] = []
    for name, api, direction in entries:
        devices.append(
            {
                "index": len(devices),
                # WDM-KS names a device after its kernel-streaming filter and pin
                "name": name.replace("(VB-Audio Virtual Cable)", "(VB-Audio Point)") if api == 3 else name,
                "hostApi": api,
                "maxInputChannels": 2 if direction == "in" else 0,
                "maxOutputChannels": 2 if direction == "out" else 0,
                "defaultSampleRate": 48_000.0 if api == 2 else 44_100.0,
            }
        )
    return devices


class _Stream:
    """An open stream: `start_stream` delivers what the test gave (capture), or nothing (playback)."""

    def __init__(self, callback: Callable[..., Any], blocks: list[bytes]) -> None:
        self.callback = callback
        self._blocks = blocks
        self._checks = 0

    def start_stream(self) -> None:
        for block in self._blocks:
            self.callback(block, len(block) // 4, {}, 0)

    def is_active(self) -> bool:
        self._checks += 1
        return self._checks <= len(self._blocks) + 2  # then the device "goes away": the test ends

    def get_output_latency(self) -> float:
        return 0.0

    def close(self) -> None:
        pass


class WindowsPortAudio:
    """PyAudio with the devices of a Windows machine with VB-Audio's cable and its A+B pack; WASAPI devices
    open only at their mixer's rate (shared mode), the others at any rate."""

    def __init__(
        self, devices: list[dict[str, Any]] | None = None, capture: list[bytes] | None = None
    ) -> None:
        self.devices = _windows_list() if devices is None else devices
        self.opened: list[dict[str, Any]] = []
        self.streams: list[_Stream] = []
        self._capture = capture or []

    def get_device_count(self) -> int:
        return len(self.devices)

    def get_device_info_by_index(self, index: int) -> dict[str, Any]:
        return self.devices[index]

    def get_host_api_info_by_index(self, index: int) -> dict[str, Any]:
        return {"name": HOST_APIS[index]}

    def get_default_input_device_info(self) -> dict[str, Any]:
        return self.devices[0]

    def is_format_supported(self, rate: float, **kwargs: Any) -> bool:
        index: int = kwargs["input_device"] if "input_device" in kwargs else kwargs["output_device"]
        device = self.devices[index]
        if device["hostApi"] == 2 and rate != device["defaultSampleRate"]:
            raise ValueError("Invalid sample rate")  # as PyAudio says it
        return True

    def open(self, **kwargs: Any) -> _Stream:
        self.opened.append(kwargs)
        stream = _Stream(kwargs["stream_callback"], self._capture if kwargs.get("input") else [])
        self.streams.append(stream)
        return stream

    def terminate(self) -> None:
        pass


def _chosen(setting: str, direction: str = "input", audio: WindowsPortAudio | None = None) -> ResolvedDevice:
    return resolve(audio or WindowsPortAudio(), setting, "input" if direction == "input" else "output")


def test_a_name_part_opens_the_wasapi_entry_of_the_device() -> None:
    chosen = _chosen("CABLE Output")
    assert (chosen.info.name, chosen.info.host_api) == (CABLE_OUT, "Windows WASAPI")
    assert [d.host_api for d in chosen.passed_over] == ["Windows DirectSound", "MME"]
    assert chosen.also_matched == (), "WDM-KS's differently named entry is not another device under WASAPI"
    output = _chosen("cable input", "output")
    assert (output.info.name, output.info.host_api) == (CABLE_IN, "Windows WASAPI")


@pytest.mark.parametrize(
    ("setting", "direction", "name"),
    [
        ("CABLE-A Output", "input", A_OUT),
        ("CABLE-B Output", "input", B_OUT),
        ("CABLE-A Input", "output", A_IN),
        ("CABLE-B Input (VB-Audio Cable B)", "output", B_IN),
    ],
)
def test_each_cable_of_the_a_b_pack_is_told_apart(setting: str, direction: str, name: str) -> None:
    chosen = _chosen(setting, direction)
    assert (chosen.info.name, chosen.info.host_api) == (name, "Windows WASAPI")
    assert chosen.also_matched == ()


@pytest.mark.parametrize("setting", ["CABLE Output (VB-Audio Virtual ", "CABLE Output (VB-Audio Virtual"])
def test_mme_s_cut_name_does_not_win_over_the_full_wasapi_name(setting: str) -> None:
    """The name as MME lists it (cut to 31 characters, first in the list) still opens the WASAPI entry."""
    chosen = _chosen(setting)
    assert (chosen.info.name, chosen.info.host_api) == (CABLE_OUT, "Windows WASAPI")
    cut = [d for d in chosen.passed_over if d.host_api == "MME"]
    assert [d.name for d in cut] == ["CABLE Output (VB-Audio Virtual "] and cut[0].index < chosen.info.index


def test_without_wasapi_directsound_then_mme() -> None:
    no_wasapi = [d for d in _windows_list() if d["hostApi"] != 2]
    chosen = _chosen("CABLE-A Output", audio=WindowsPortAudio(no_wasapi))
    assert (chosen.info.name, chosen.info.host_api) == (A_OUT, "Windows DirectSound")
    mme_only = [d for d in _windows_list() if d["hostApi"] == 0]
    chosen = _chosen("CABLE-A Output", audio=WindowsPortAudio(mme_only))
    assert (chosen.info.name, chosen.info.host_api) == ("CABLE-A Output (VB-Audio Cable ", "MME")


def test_an_index_opens_exactly_that_entry() -> None:
    audio = WindowsPortAudio()
    mme = next(d for d in list_devices(audio) if d.host_api == "MME" and d.name.startswith("CABLE Output"))
    assert _chosen(str(mme.index), audio=audio).info == mme


def test_an_ambiguous_name_takes_the_first_and_names_the_others() -> None:
    chosen = _chosen("CABLE")
    assert (chosen.info.name, chosen.info.host_api) == (CABLE_OUT, "Windows WASAPI")
    assert [d.name for d in chosen.also_matched] == [A_OUT, B_OUT]
    assert "name more of it" in chosen.describe() and A_OUT in chosen.describe()


def test_elsewhere_the_first_match_by_index_as_before() -> None:
    linux: list[dict[str, Any]] = [
        {"index": 0, "name": "HDA Intel PCH: ALC892 Analog (hw:0,0)", "hostApi": 0},
        {"index": 1, "name": "pulse", "hostApi": 0},
        {"index": 2, "name": "HDA Intel PCH: ALC892 Digital (hw:0,1)", "hostApi": 0},
        {"index": 3, "name": "HDA Intel PCH: ALC892 Analog (hw:0,0)", "hostApi": 1},
    ]
    for device in linux:
        device |= {"maxInputChannels": 2, "maxOutputChannels": 2, "defaultSampleRate": 44_100.0}

    class Linux(WindowsPortAudio):
        def get_host_api_info_by_index(self, index: int) -> dict[str, Any]:
            return {"name": ["ALSA", "JACK Audio Connection Kit"][index]}

    chosen = _chosen("ALC892", audio=Linux(linux))
    assert chosen.info.index == 0 and chosen.passed_over[0].index == 3
    assert [d.index for d in chosen.also_matched] == [2]


def test_the_device_table_shows_each_host_api_and_which_entry_a_name_opens() -> None:
    table = describe(list_devices(WindowsPortAudio()))
    rows = table.splitlines()
    assert rows[0].split()[-3:] == ["name", "(host", "API)"]
    assert any(row.endswith(f"{CABLE_OUT} (Windows WASAPI)") and " 48000 " in row for row in rows)
    assert any(row.endswith("CABLE Output (VB-Audio Virtual  (MME)") for row in rows)
    assert rows[-1].startswith("A device named by part of its name is opened through Windows WASAPI, then")
    linux = describe([DeviceInfo(0, "pulse", "ALSA", 32, 32, 44_100)])
    assert "named by part" not in linux, "one host API: no note"


def test_a_pulse_device_is_refused_off_linux_with_what_to_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(DeviceNotFoundError) as raised:
        _chosen("pulse:vrchat_out.monitor")
    message = str(raised.value)
    assert message.startswith("machine.audio.input_device: 'pulse:vrchat_out.monitor' names a PulseAudio")
    assert "python -m machine devices" in message and "part of its name" in message
    assert "pulse:NAME" not in message, "the kinds of setting offered are those this platform has"
    assert CABLE_OUT in message, "the devices are listed"


def _sine(rate: int, seconds: float, frequency: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _dominant(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def test_capture_from_a_48_khz_wasapi_cable_is_resampled_to_16_khz(caplog: pytest.LogCaptureFixture) -> None:
    tone = _sine(48_000, 1.0, 700.0)
    blocks = [tone[i : i + 960].tobytes() for i in range(0, len(tone), 960)]  # 20 ms blocks
    audio = WindowsPortAudio(capture=blocks)
    stopping = threading.Event()
    chunks: list[np.ndarray] = []

    def deliver(chunk: AudioChunk) -> None:
        chunks.append(chunk.samples)

    source = DeviceSource(audio, LiveAudioSettings(input_device="CABLE Output"), on_interrupted=stopping.set)
    with caplog.at_level(logging.INFO, logger="machine.audio.capture"):
        source.run(deliver, lambda timeout: True, stopping)

    opened = audio.opened[0]
    wasapi = _chosen("CABLE Output").info
    assert (opened["rate"], opened["input_device_index"]) == (48_000, wasapi.index)
    heard = np.concatenate(chunks)
    assert all(len(c) == CHUNK_SAMPLES for c in chunks)
    assert abs(len(heard) - SAMPLE_RATE) <= 2 * CHUNK_SAMPLES
    assert abs(_dominant(heard[2000:-2000], SAMPLE_RATE) - 700) < 5
    logged = caplog.records[0].getMessage()
    assert logged == (
        f"capturing from {CABLE_OUT} (Windows WASAPI; preferred to its Windows DirectSound, MME entries) "
        "at 48000 Hz"
    )


def test_playback_to_a_48_khz_wasapi_cable_is_resampled_from_the_voice() -> None:
    audio = WindowsPortAudio()
    sink = DeviceSink(audio, LiveAudioSettings(output_device="CABLE Input"), PlaybackLevels())
    sink.begin_reply(22_050)  # Piper's rate
    sink.play(_sine(22_050, 0.5, 440.0), threading.Event())
    opened = audio.opened[0]
    assert (opened["rate"], opened["output_device_index"]) == (
        48_000,
        _chosen("CABLE Input", "output").info.index,
    )
    played = []
    for _ in range(30):
        data, _flag = audio.streams[0].callback(
            None, 960, {"output_buffer_dac_time": 0.0, "current_time": 0.0}, 0
        )
        played.append(np.frombuffer(data, dtype=np.float32))
    out = np.concatenate(played)
    loud = np.flatnonzero(np.abs(out) > 0.05)
    voiced = out[loud[0] : loud[-1] + 1]
    assert abs(len(voiced) - 24_000) <= 2 * 960, "half a second at 48 kHz (less what is still buffered)"
    assert abs(_dominant(voiced, 48_000) - 440) < 5
    sink.close()
