"""Text to speech with Piper; the default voice is the bundled en_US-joe-medium."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
from piper import PiperVoice, SynthesisConfig

from machine.backends import bundled_models
from machine.ports import SpeechAudio
from machine.settings import BUNDLED, SynthesizerSettings

log = logging.getLogger(__name__)

ARENA_PHONEME_IDS = 160
"""Sentences up to this many phoneme ids (about 70 characters, 4 s of speech) run in a kept memory arena;
after a longer one the arena gives its extra memory back (see `ArenaBoundedSession`)."""

REST_TEXT = "Hm."
"""What is synthesised (and dropped) to shrink the arena when a turn is over."""


class ArenaBoundedSession:
    """A Piper voice's onnxruntime session whose memory arena stays the size of an ordinary sentence.

    onnxruntime keeps every block its arena ever grew for: the voice's intermediate tensors scale with the
    sentence, so one 30-second sentence kept ~600 MB for the rest of the evening (measured: RSS 217 -> 811 MB
    over sentences of 4-29 s). Shrinking after every run costs 10-20 ms a sentence; shrinking only after a
    sentence longer than `limit` phoneme ids keeps ordinary sentences as fast and the arena bounded.

    Bounded is not flat: ordinary sentences still grow the arena in 32 MB blocks until a long one shrinks
    it, so the memory between turns went up and down by up to 128 MB (RSS 163-273 MB over the hour soak's
    replies). :meth:`shrink_next` makes the next run shrink whatever its length; the synthesiser asks for
    it when a turn is over (12 ms while the bot is quiet; the next reply's first sentence takes about 5 ms
    more to grow the arena back).
    """

    def __init__(self, session: onnxruntime.InferenceSession, limit: int = ARENA_PHONEME_IDS) -> None:
        self._session = session
        self._limit = limit
        self._shrink = onnxruntime.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._shrink_next = False

    def shrink_next(self) -> None:
        """Shrink the arena after the next run (whichever thread makes it)."""
        self._shrink_next = True

    def run(self, output_names: list[str] | None, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The session's outputs; after a long sentence, or when asked, the arena is shrunk back."""
        shrink = self._shrink_next or inputs["input"].shape[-1] > self._limit
        self._shrink_next = False
        return self._session.run(output_names, inputs, self._shrink if shrink else None)

    def __getattr__(self, name: str) -> object:
        return getattr(self._session, name)


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
        self._session = ArenaBoundedSession(self._voice.session)
        self._voice.session = self._session
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

    def rest(self) -> None:
        """Shrink the voice's memory arena back to its first block: a short word is synthesised with the
        shrink asked for, and dropped (see :class:`ArenaBoundedSession`)."""
        self._session.shrink_next()
        for _ in self._voice.synthesize(REST_TEXT, syn_config=self._config):
            pass

    def synthesize(self, text: str) -> Iterator[SpeechAudio]:
        """Audio for `text`, one chunk per sentence Piper finds in it."""
        for chunk in self._voice.synthesize(text, syn_config=self._config):
            samples = np.asarray(chunk.audio_float_array, dtype=np.float32)
            yield SpeechAudio(samples=samples, sample_rate=int(chunk.sample_rate))
