"""`python -m machine`: clear errors for bad input, the live-audio notice, and the diagram command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from machine.__main__ import main
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


def test_devices_command_lists_devices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["index", "in", "out", "rate", "name"]


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
    monkeypatch.setattr(
        "machine.recorded_conversation.build_runtime",
        lambda *args, **kwargs: pytest.fail("the models were loaded although the store is in use"),
    )
    first = MemorySystem.open(load_memory_settings())  # the first runtime's store
    try:
        assert main(["--input", str(question), "--output", str(tmp_path / "out"), "--fast"]) == 2
    finally:
        first.close()
    error = capsys.readouterr().err
    assert f"is in use by process {os.getpid()}" in error
    assert "memory_store.client: http" in error
