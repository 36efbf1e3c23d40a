"""`python -m machine`: clear errors for bad input, the live-audio notice, and the diagram command."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile
from chat_fakes import ConversationStandIn, RecentWindow

from machine import app as app_module
from machine.__main__ import main
from machine.app import Parts
from machine.ports import AudioChunk, AudioSource
from machine.turn_metrics import TurnRecord
from memory_store import MemorySystem
from memory_store import load_settings as load_memory_settings

REPO = Path(__file__).resolve().parents[1]


def test_live_mode_with_a_missing_device_lists_the_devices(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MACHINE_AUDIO__INPUT_DEVICE", "no-such-cable")
    assert main([]) == 2
    error = capsys.readouterr().err
    assert "machine.audio.input_device: no input device matches 'no-such-cable'" in error
    assert "index" in error and "name" in error, "the available devices are listed"


class _FakePortAudio:
    """PortAudio with the given devices (none: no sound server is running)."""

    def __init__(self, names: list[str]) -> None:
        self._names = names

    def get_device_count(self) -> int:
        return len(self._names)

    def get_device_info_by_index(self, index: int) -> dict[str, object]:
        return {
            "name": self._names[index],
            "hostApi": 0,
            "maxInputChannels": 2,
            "maxOutputChannels": 2,
            "defaultSampleRate": 48_000.0,
        }

    def get_host_api_info_by_index(self, index: int) -> dict[str, object]:
        return {"name": "ALSA"}

    def terminate(self) -> None:
        pass


def test_devices_command_lists_devices(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("machine.audio.devices.open_portaudio", lambda: _FakePortAudio(["pulse"]))
    assert main(["devices"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split() == ["index", "in", "out", "rate", "name", "(host", "API)"]
    assert rows[1].split() == ["0", "2", "2", "48000", "pulse", "(ALSA)"]


def test_devices_command_without_any_device_says_why(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("machine.audio.devices.open_portaudio", lambda: _FakePortAudio([]))
    assert main(["devices"]) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    assert "no audio devices at all: is a sound server running?" in printed.err
    assert "pulseaudio --start" in printed.err and "Windows" in printed.err


def test_help_says_what_each_command_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    for command in ("run", "devices", "demo", "diagram", "forget"):
        described = [line for line in lines if line.split()[:1] == [command] and len(line.split()) > 3]
        assert described, f"--help does not say what `{command}` does"


@pytest.mark.parametrize("command", [[], ["demo"]])
def test_an_unwritable_output_is_named_before_models_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    question = tmp_path / "question.wav"
    soundfile.write(str(question), np.zeros(16_000, dtype=np.float32), 16_000)
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    bad = tmp_path / "a-file" / "out"
    parts = Parts(conversation=lambda *args: pytest.fail("the models were loaded"))
    inputs = [] if command else ["--input", str(question)]
    assert main([*command, *inputs, "--output", str(bad), "--fast"], parts) == 2
    assert capsys.readouterr().err == f"error: cannot write to --output {bad}: Not a directory\n"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: soundfile.write(str(p), np.zeros(0, dtype=np.float32), 16_000), "the audio is empty"),
        (
            lambda p: soundfile.write(
                str(p), np.full(800, np.nan, dtype=np.float32), 16_000, subtype="FLOAT"
            ),
            "NaN",
        ),
        (lambda p: p.write_bytes(b"RIFF....not a wave file"), "not a readable audio file"),
    ],
)
def test_bad_input_file_is_named_in_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, expected: str
) -> None:
    bad = tmp_path / "question.wav"
    make(bad)  # type: ignore[operator]
    assert main(["--input", str(bad), "--output", str(tmp_path / "out"), "--fast"]) == 2
    error = capsys.readouterr().err
    assert str(bad) in error and expected in error


def test_bad_configuration_stops_at_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("machine:\n  endpointing:\n    end_silence_ms: 1\n", encoding="utf-8")
    assert main(["--config", str(config), "--input", "x.wav"]) == 2
    assert "machine.endpointing.end_silence_ms" in capsys.readouterr().err


def test_diagram_command_prints_the_docs_page() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "machine", "diagram"], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert printed == (REPO / "docs" / "state-machine.md").read_text(encoding="utf-8")


def test_a_second_runtime_on_the_same_store_stops_before_loading_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    question = tmp_path / "question.wav"
    soundfile.write(str(question), np.zeros(16_000, dtype=np.float32), 16_000)
    parts = Parts(conversation=lambda *args: pytest.fail("the models were loaded: the store is in use"))
    first = MemorySystem.open(load_memory_settings())  # the first runtime's store
    try:
        assert main(["--input", str(question), "--output", str(tmp_path / "out"), "--fast"], parts) == 2
    finally:
        first.close()
    error = capsys.readouterr().err
    assert f"is in use by process {os.getpid()}" in error
    assert "memory_store.client: http" in error


class _LoudnessRuntime(ConversationStandIn):
    """Stands in for the runtime: a file with sound above -40 dBFS starts one turn, reported (as the
    runtime does) before the bot listens again."""

    def __init__(self, on_turn: Callable[[TurnRecord], None]) -> None:
        self._on_turn = on_turn
        self._loud = False
        self._turns = 0

    def _deliver(self, chunk: AudioChunk) -> None:
        self._loud = self._loud or float(np.max(np.abs(chunk.samples))) > 0.01

    def _wait_for_turn(self, timeout: float) -> bool:
        if self._loud:
            self._turns += 1
            self._loud = False
            self._on_turn(TurnRecord(self._turns, 0.0, 0.0, transcript="hello", reply=["Hi!"]))
        return True

    def run(self, source: AudioSource, on_listening: Callable[[], None] = lambda: None) -> list[TurnRecord]:
        source.run(self._deliver, self._wait_for_turn, threading.Event())
        return []


def test_after_each_turn_the_free_memory_goes_back_to_the_system(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    class Recorder:
        def after_turn(self) -> None:
            seen.append("trim")

        def close(self) -> None:
            seen.append("closed")

    monkeypatch.setattr(app_module, "FreeMemoryReturner", Recorder)
    loud = np.random.default_rng(0).normal(0.0, 0.1, 16_000).astype(np.float32)
    folder = tmp_path / "questions"
    folder.mkdir()
    for name in ("q1.wav", "q2.wav"):
        soundfile.write(str(folder / name), loud, 16_000)

    def counted(on_turn: Callable[[TurnRecord], None]) -> _LoudnessRuntime:
        def reported(record: TurnRecord) -> None:
            seen.append("turn")
            on_turn(record)

        return _LoudnessRuntime(reported)

    parts = Parts(memory=RecentWindow(2), conversation=lambda memory, sink, on_turn: counted(on_turn))

    assert main(["--input", str(folder), "--output", str(tmp_path / "out"), "--fast"], parts) == 0
    assert seen == ["turn", "trim", "turn", "trim", "closed"]


def test_files_without_speech_are_named_and_turns_jsonl_is_always_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    noise = np.random.default_rng(0).normal(0.0, 0.001, 16_000).astype(np.float32)  # -60 dBFS hiss
    folder = tmp_path / "questions"
    folder.mkdir()
    soundfile.write(str(folder / "q1.wav"), noise, 16_000)
    soundfile.write(str(folder / "q2.wav"), noise * 100, 16_000)  # "speech"
    soundfile.write(str(folder / "q3.wav"), noise, 16_000)
    output = tmp_path / "out"
    parts = Parts(
        memory=RecentWindow(2),  # nothing of the memory block is opened
        conversation=lambda memory, sink, on_turn: _LoudnessRuntime(on_turn),
    )

    assert main(["--input", str(folder / "q1.wav"), "--output", str(output), "--fast"], parts) == 0
    assert capsys.readouterr().out.splitlines() == [f"no speech heard in {folder / 'q1.wav'}"]
    assert (output / "turns.jsonl").read_text(encoding="utf-8") == ""

    assert main(["--input", str(folder), "--output", str(output), "--fast"], parts) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-2:] == [
        f"no speech heard in {folder / 'q1.wav'}",
        f"no speech heard in {folder / 'q3.wav'}",
    ]
    assert len((output / "turns.jsonl").read_text(encoding="utf-8").splitlines()) == 1
