"""Text to speech with Piper; the default voice is the bundled en_US-joe-medium."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from piper import PiperVoice, SynthesisConfig

from machine.backends import bundled_models
from machine.ports import SpeechAudio
from machine.settings import BUNDLED, SynthesizerSettings

log = logging.getLogger(__name__)


class PiperSynthesizer:
    """Yields one chunk of audio per sentence, at the voice's own rate."""

    def __init__(self, settings: SynthesizerSettings) -> None:
        voice = bundled_models.joe_voice() if settings.voice == BUNDLED else Path(settings.voice)
        if not voice.is_file():
            raise FileNotFoundError(
                f"machine.synthesizer.voice: {voice} is not a file; name a Piper .onnx voice "
                "(its .onnx.json config beside it)"
            )
        log.info("loading Piper voice %s", voice)
        self._voice = PiperVoice.load(voice)
        self._config = SynthesisConfig(
            speaker_id=settings.speaker_id,
            length_scale=settings.length_scale,
            noise_scale=settings.noise_scale,
            noise_w_scale=settings.noise_w_scale,
        )

    @property
    def sample_rate(self) -> int:
        """The voice's sample rate (22050 Hz for joe-medium)."""
        return int(self._voice.config.sample_rate)

    def synthesize(self, text: str) -> Iterator[SpeechAudio]:
        """Audio for `text`, one chunk per sentence Piper finds in it."""
        for chunk in self._voice.synthesize(text, syn_config=self._config):
            samples = np.asarray(chunk.audio_float_array, dtype=np.float32)
            yield SpeechAudio(samples=samples, sample_rate=int(chunk.sample_rate))
