"""The GE2E voice encoder on its bundled weights: one voice's utterances land close together, another
voice's further away; bad audio and a missing package get clear errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from machine.audio.files import read_wav
from machine.backends import bundled_models
from machine.backends.bundled_models import MissingModelPackageError
from machine.backends.voice_encoder import EMBEDDING_SIZE, VoiceEncoder
from machine.settings import SpeakerSettings

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def encoder() -> VoiceEncoder:
    return VoiceEncoder(bundled_models.voice_encoder_weights())


def test_one_voice_is_closer_to_itself_than_to_another(
    encoder: VoiceEncoder, speak_16k: Callable[[str], np.ndarray], tmp_path: Path
) -> None:
    assert shutil.which("espeak-ng"), "espeak-ng is installed by `make system-packages`"
    joe = [
        encoder.embed(speak_16k(text)) for text in ("Hello, how are you tonight?", "I like this world a lot.")
    ]
    other = tmp_path / "other.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en-us+f4", "-p", "85", "-w", str(other), "Hello, how are you?"], check=True
    )
    stranger = encoder.embed(read_wav(other))
    assert joe[0].shape == (EMBEDDING_SIZE,) and abs(float(np.linalg.norm(joe[0])) - 1.0) < 1e-4
    same, different = float(joe[0] @ joe[1]), float(joe[0] @ stranger)
    threshold = SpeakerSettings().threshold  # the shipped one, measured by bench/crowd.py
    assert same >= threshold > different, (same, different)


def test_bad_audio_is_refused(encoder: VoiceEncoder) -> None:
    with pytest.raises(ValueError, match="finite, non-empty"):
        encoder.embed(np.zeros(0, dtype=np.float32))
    with pytest.raises(ValueError, match="finite, non-empty"):
        encoder.embed(np.full(16000, np.nan, dtype=np.float32))


def test_a_missing_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bundled_models, "package_dir", lambda package, distribution: tmp_path)
    with pytest.raises(
        MissingModelPackageError, match=re.escape("`uv sync` (both install resemblyzer==0.1.4 from uv.lock)")
    ) as error:
        bundled_models.voice_encoder_weights()
    assert "speakers.enabled: false" in str(error.value)
