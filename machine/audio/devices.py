"""Finding PyAudio devices by index, name substring, or PulseAudio source/sink name.

A device setting is one of:

- ``default``: the system's default device;
- an index, as `python -m machine devices` lists them;
- a substring of a device name (case-insensitive), e.g. ``CABLE Output`` for VB-Audio's virtual cable;
- ``pulse:NAME`` (Linux only): the PulseAudio source or sink called NAME (e.g.
  ``pulse:vrchat_out.monitor``), opened through PortAudio's ``pulse`` device. Its presence is watched, so
  a sink that is unloaded and loaded again is noticed and the stream is reopened.

Windows lists one physical device once per host API (MME, DirectSound, WASAPI, WDM-KS). A device named by
part of its name is taken from the first host API of :data:`HOST_API_PREFERENCE` that lists it (WASAPI,
then DirectSound, then MME, then any other); among equals, and so everywhere else (ALSA, JACK, Core
Audio), the first match by index, as before. MME cuts names to 31 characters, so its entry of a device
counts as the same device as the full name under the other host APIs, and never wins over them.
``default`` is PortAudio's default device, on Windows its MME entry.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pyaudio

from machine.ports import DeviceNotFoundError

Direction = Literal["input", "output"]


@dataclass(frozen=True)
class DeviceInfo:
    """One PortAudio device."""

    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_rate: int

    def offers(self, direction: Direction) -> bool:
        """Whether the device can record (input) or play (output)."""
        return (self.max_input_channels if direction == "input" else self.max_output_channels) > 0


HOST_API_PREFERENCE = ("Windows WASAPI", "Windows DirectSound", "MME")
"""The host APIs a device named by part of its name is taken from, best first (PortAudio's names): WASAPI
has the shortest buffers of the three in shared mode and the full device names; MME has the longest
buffers and cuts names to :data:`MME_NAME_LIMIT` characters. Any other host API (WDM-KS, ASIO, ALSA, JACK,
Core Audio) comes after them."""

MME_NAME_LIMIT = 31
"""MME device names are cut to this many characters (``WAVEINCAPS.szPname`` holds 32 with the NUL)."""


def same_device(one: DeviceInfo, other: DeviceInfo) -> bool:
    """Whether two entries are one physical device under two host APIs: the same name, or one the other's
    name cut to :data:`MME_NAME_LIMIT` characters."""
    short, long = sorted((one.name, other.name), key=len)
    return short == long or (len(short) == MME_NAME_LIMIT and long.startswith(short))


def _preference(device: DeviceInfo) -> tuple[int, int]:
    api = device.host_api
    rank = HOST_API_PREFERENCE.index(api) if api in HOST_API_PREFERENCE else len(HOST_API_PREFERENCE)
    return rank, device.index


@dataclass(frozen=True)
class ResolvedDevice:
    """A device chosen for one direction, and the PulseAudio name to route it to, if any."""

    info: DeviceInfo
    pulse_name: str | None = None
    passed_over: tuple[DeviceInfo, ...] = ()
    """The same device under host APIs less preferred (Windows lists one device under several)."""
    also_matched: tuple[DeviceInfo, ...] = ()
    """Other devices the name matched too under the same host API (the setting is ambiguous)."""

    def describe(self) -> str:
        """The device as a log line names it: its name, its host API, and what else the setting matched."""
        if self.pulse_name:
            return self.pulse_name
        text = f"{self.info.name} ({self.info.host_api}"
        if self.passed_over:
            text += f"; preferred to its {', '.join(d.host_api for d in self.passed_over)} entries"
        text += ")"
        if self.also_matched:
            others = ", ".join(f"{d.index} {d.name} ({d.host_api})" for d in self.also_matched)
            text += f"; the setting also matches {others}: name more of it to choose one of those"
        return text


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silences what ALSA and JACK print to the C-level stderr while PortAudio probes devices."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w", encoding="utf-8") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_portaudio() -> pyaudio.PyAudio:
    """A PyAudio instance, without the ALSA/JACK probing noise on stderr."""
    with quiet_native_stderr():
        return pyaudio.PyAudio()


def list_devices(audio: pyaudio.PyAudio) -> list[DeviceInfo]:
    """Every device PortAudio knows."""
    devices = []
    for index in range(audio.get_device_count()):
        raw = audio.get_device_info_by_index(index)
        devices.append(
            DeviceInfo(
                index=index,
                name=str(raw["name"]),
                host_api=str(audio.get_host_api_info_by_index(int(raw["hostApi"]))["name"]),
                max_input_channels=int(raw["maxInputChannels"]),
                max_output_channels=int(raw["maxOutputChannels"]),
                default_rate=int(raw["defaultSampleRate"]),
            )
        )
    return devices


def describe(devices: list[DeviceInfo]) -> str:
    """A table of devices: index, direction, default rate, name (host API); where one device is listed
    under several of the preferred host APIs (Windows), a last line says which entry a name part picks."""
    rows = [f"{'index':>5}  {'in':>3}  {'out':>3}  {'rate':>6}  name (host API)"]
    for d in devices:
        rows.append(
            f"{d.index:>5}  {d.max_input_channels:>3}  {d.max_output_channels:>3}  {d.default_rate:>6}  "
            f"{d.name} ({d.host_api})"
        )
    if len({d.host_api for d in devices} & set(HOST_API_PREFERENCE)) > 1:
        rows.append(
            "A device named by part of its name is opened through "
            f"{', then '.join(HOST_API_PREFERENCE)}, the first that lists it (MME cuts names to "
            f"{MME_NAME_LIMIT} characters); an index opens exactly that entry."
        )
    return "\n".join(rows)


NO_DEVICES = (
    "there are no audio devices at all: is a sound server running? On Linux start one with "
    "`pulseaudio --start` (or PipeWire's `systemctl --user start pipewire-pulse`); on Windows check that "
    "Settings > System > Sound lists an input and an output"
)


def device_table() -> str:
    """`python -m machine devices`: every input and output device with its default rate.

    Raises DeviceNotFoundError when PortAudio finds no device at all (usually: no sound server)."""
    audio = open_portaudio()
    try:
        devices = list_devices(audio)
    finally:
        audio.terminate()
    if not devices:
        raise DeviceNotFoundError(NO_DEVICES)
    return describe(devices)


def pulse_names(direction: Direction) -> set[str] | None:
    """Names of PulseAudio sources (input) or sinks (output); None when PulseAudio cannot be asked."""
    kind = "sources" if direction == "input" else "sinks"
    try:
        listed = subprocess.run(
            ["pactl", "list", "short", kind], capture_output=True, text=True, timeout=5, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {line.split("\t")[1] for line in listed.splitlines() if "\t" in line}


def resolve(audio: pyaudio.PyAudio, setting: str, direction: Direction) -> ResolvedDevice:
    """The device named by `setting` for `direction`, or a clear error listing the devices."""
    devices = [d for d in list_devices(audio) if d.offers(direction)]
    on_linux = sys.platform.startswith("linux")

    def missing(reason: str) -> DeviceNotFoundError:
        listing = describe(devices) if devices else "(no devices at all: is a sound server running?)"
        kinds = "an index, part of a name, or pulse:NAME" if on_linux else "an index, or part of a name"
        return DeviceNotFoundError(
            f"machine.audio.{direction}_device: {reason}. Set it to `default`, {kinds}. "
            f"The {direction} devices are:\n{listing}",
            reason=reason,
        )

    if setting.startswith("pulse:"):
        if not on_linux:
            raise missing(
                f"'{setting}' names a PulseAudio {direction}, and PulseAudio is Linux's only (this is "
                f"{sys.platform}): name the device by part of its name as `python -m machine devices` "
                "lists it (e.g. `CABLE Output` for VB-Audio's cable), or by its index"
            )
        name = setting.removeprefix("pulse:")
        known = pulse_names(direction)
        if known is not None and name not in known:
            raise missing(
                f"PulseAudio has no {direction} called '{name}' (it has: {', '.join(sorted(known))})"
            )
        pulse = next((d for d in devices if d.name == "pulse"), None)
        if pulse is None:
            raise missing("PortAudio has no 'pulse' device to reach PulseAudio through")
        return ResolvedDevice(pulse, pulse_name=name)
    if setting == "default":
        try:
            raw = (
                audio.get_default_input_device_info()
                if direction == "input"
                else audio.get_default_output_device_info()
            )
        except OSError:
            raise missing("there is no default device") from None
        return ResolvedDevice(next(d for d in devices if d.index == int(raw["index"])))
    if setting.isdigit():
        found = [d for d in devices if d.index == int(setting)]
    else:
        found = sorted((d for d in devices if setting.lower() in d.name.lower()), key=_preference)
    if not found:
        raise missing(f"no {direction} device matches '{setting}'")
    chosen, rest = found[0], found[1:]
    return ResolvedDevice(
        chosen,
        passed_over=tuple(d for d in rest if same_device(d, chosen)),
        also_matched=tuple(d for d in rest if d.host_api == chosen.host_api and not same_device(d, chosen)),
    )


def supports_rate(audio: pyaudio.PyAudio, device: DeviceInfo, rate: int, direction: Direction) -> bool:
    """Whether the device opens mono float32 at `rate`."""
    try:
        if direction == "input":
            return bool(
                audio.is_format_supported(
                    rate, input_device=device.index, input_channels=1, input_format=pyaudio.paFloat32
                )
            )
        return bool(
            audio.is_format_supported(
                rate, output_device=device.index, output_channels=1, output_format=pyaudio.paFloat32
            )
        )
    except ValueError:
        return False
