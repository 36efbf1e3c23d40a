"""Two voices through the whole runtime (bundled models): each turn says who spoke, and no voice embedding
reaches the disk: not the memory store's files, not the turns file (voices are biometric; they live in
memory for the session only)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from machine.__main__ import main
from machine.audio.files import write_wav
from machine.backends.voice_encoder import VoiceEncoder
from machine.ports import SAMPLE_RATE, FloatAudio

pytestmark = pytest.mark.e2e


def test_turns_name_their_speaker_and_no_voice_is_written(
    tmp_path: Path, speak_16k: Callable[[str], np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert shutil.which("espeak-ng"), "espeak-ng is installed by `make system-packages`"
    folder = tmp_path / "questions"
    folder.mkdir()
    write_wav(folder / "q1.wav", speak_16k("Hello Celeste, I'm Robin. I have a dog."), SAMPLE_RATE)
    subprocess.run(
        [
            "espeak-ng",
            "-v",
            "en-us+f4",
            "-p",
            "85",
            "-w",
            str(folder / "q2.wav"),
            "Hi Celeste, do you like cats?",
        ],
        check=True,
    )
    voices: list[np.ndarray] = []
    embed = VoiceEncoder.embed

    def recorded(self: VoiceEncoder, speech: FloatAudio) -> np.ndarray:
        voice = embed(self, speech)
        voices.append(voice.copy())
        return voice

    monkeypatch.setattr(VoiceEncoder, "embed", recorded)
    out = tmp_path / "out"

    assert main(["--input", str(folder), "--output", str(out), "--fast"]) == 0

    turns = [json.loads(line) for line in (out / "turns.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [turn["speaker"] for turn in turns] == ["Robin", "speaker 2"], [t["transcript"] for t in turns]
    assert len(voices) >= 2  # a turn handed on early at a pause is embedded again when it ends
    store = Path(os.environ["MEMORY_STORE_PATH"])
    files = [path for root in (store, out) for path in root.rglob("*") if path.is_file()]
    assert any(path.name == "chroma.sqlite3" for path in files), "the store was written"
    control = tmp_path / "control.bin"  # the scan does see a voice written out
    control.write_bytes(b"header" + voices[0].tobytes())
    assert _holding_a_voice([control], voices) == [control]
    found = _holding_a_voice(files, voices)
    assert found == [], f"a voice embedding was written to {found}"


def _holding_a_voice(files: list[Path], voices: list[np.ndarray]) -> list[Path]:
    """The files that hold one of `voices`: as float32 or float64 bytes, or as JSON numbers."""
    found = []
    for path in files:
        data = path.read_bytes()
        for voice in voices:
            binary = (voice[:16].tobytes(), voice[:16].astype(np.float64).tobytes())
            as_json = json.dumps([float(value) for value in voice[:2]])[1:-1].encode()  # "0.0123…, 0.0456…"
            if any(form in data for form in (*binary, as_json)):
                found.append(path)
                break
    return found
