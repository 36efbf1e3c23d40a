"""Audio longer than whisper's 30 s window is split at pauses, never mid-word, and nothing is lost."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from machine.ports import SAMPLE_RATE

pytestmark = pytest.mark.models  # importing whisperx loads torch


def speech_with_pauses(seconds: float, pauses_at: list[float]) -> np.ndarray:
    """A loud 'voice' (noise) with 300 ms of silence at each of `pauses_at`."""
    audio = 0.2 * np.random.default_rng(0).standard_normal(int(seconds * SAMPLE_RATE)).astype(np.float32)
    for at in pauses_at:
        audio[int(at * SAMPLE_RATE) : int((at + 0.3) * SAMPLE_RATE)] = 0.0
    return audio


def test_long_audio_is_cut_inside_its_pauses_into_windows_whisper_can_take() -> None:
    from machine.backends.whisperx_transcriber import pieces

    audio = speech_with_pauses(75.0, pauses_at=[10.0, 25.0, 49.0, 62.0])
    ranges = pieces(audio, SAMPLE_RATE)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(audio), "the pieces cover everything"
    assert all(end == start for (_, end), (start, _) in itertools.pairwise(ranges)), "no overlap gap"
    assert all(end - start <= 30 * SAMPLE_RATE for start, end in ranges)
    cuts = [end / SAMPLE_RATE for _, end in ranges[:-1]]
    assert len(cuts) == 2
    assert 25.0 < cuts[0] < 25.3 and 49.0 < cuts[1] < 49.3, f"each cut is inside a pause: {cuts}"


def test_audio_within_one_window_is_one_piece() -> None:
    from machine.backends.whisperx_transcriber import pieces

    assert pieces(np.zeros(29 * SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE) == [(0, 29 * SAMPLE_RATE)]


class _Model:
    """faster-whisper's model as the sequential decoder calls it."""

    def __init__(self, pipeline: _Pipeline) -> None:
        self.pipeline = pipeline
        self.options: dict[str, object] = {}

    def transcribe(self, audio: np.ndarray, **options: object) -> tuple[list[object], None]:
        self.pipeline.heard.append(audio)
        self.options = options
        return [SimpleNamespace(text=f" {self.pipeline.text} ")], None


class _Pipeline:
    """whisperx's pipeline as the transcriber calls it: records the audio, says what it is told to."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.heard: list[np.ndarray] = []
        self.model = _Model(self)
        self.options = SimpleNamespace(
            beam_size=1, initial_prompt="A voice chat with Celeste.", hotwords="Celeste", suppress_blank=True
        )

    def transcribe(self, audio: np.ndarray, batch_size: int) -> dict[str, object]:
        self.heard.append(audio)
        return {"segments": [{"text": self.text}], "language": "en"}


def _transcriber(text: str, **settings: object) -> tuple[object, _Pipeline]:
    """A WhisperxTranscriber around a fake pipeline (no model is loaded)."""
    from machine.backends.silero_vad import SileroVoiceActivity
    from machine.backends.whisperx_transcriber import _LEAD_IN_S, WhisperxTranscriber
    from machine.settings import TranscriberSettings

    transcriber = WhisperxTranscriber.__new__(WhisperxTranscriber)
    pipeline = _Pipeline(text)
    chosen = TranscriberSettings().model_copy(update={"decoder": "batched", **settings})
    transcriber._pipeline = pipeline
    transcriber._language = "en"
    transcriber._lead_in = np.zeros(int(_LEAD_IN_S * SAMPLE_RATE), dtype=np.float32)
    transcriber._settings = chosen
    transcriber._vad = SileroVoiceActivity() if chosen.trim_to_voice else None
    return transcriber, pipeline


def test_whisper_gets_the_voiced_stretch_and_the_pad_not_the_silence_around_it(
    speak_16k: object,
) -> None:
    from machine.backends.whisperx_transcriber import _LEAD_IN_S

    voice = speak_16k("Hello there, how are you?")  # type: ignore[operator]
    rng = np.random.default_rng(1)
    lead, tail = int(1.5 * SAMPLE_RATE), int(2.0 * SAMPLE_RATE)
    audio = np.concatenate([np.zeros(lead, np.float32), voice, np.zeros(tail, np.float32)])
    audio += (0.003 * rng.standard_normal(len(audio))).astype(np.float32)  # -50 dBFS noise throughout
    transcriber, pipeline = _transcriber("Hello there, how are you?", trim_to_voice=True, trim_pad_ms=200)
    transcriber.transcribe(audio)  # type: ignore[attr-defined]
    given = len(pipeline.heard[0]) / SAMPLE_RATE - _LEAD_IN_S
    spoken = len(voice) / SAMPLE_RATE
    assert spoken <= given <= spoken + 0.4 + 0.2, f"{given:.2f} s of {len(audio) / SAMPLE_RATE:.2f} s"

    untrimmed, pipeline = _transcriber("Hello there, how are you?", trim_to_voice=False)
    untrimmed.transcribe(audio)  # type: ignore[attr-defined]
    assert len(pipeline.heard[0]) == len(audio) + int(_LEAD_IN_S * SAMPLE_RATE)


def test_a_loop_whisper_writes_on_a_short_segment_is_written_once(speak_16k: object) -> None:
    audio = speak_16k("Hello? Hello?")  # type: ignore[operator]
    looped = "Hello. Hello. Hello. Hello. Hello. Hello."
    transcriber, _ = _transcriber(looped, trim_to_voice=True, collapse_repeats=True)
    assert transcriber.transcribe(audio).text == "Hello."  # type: ignore[attr-defined]
    kept, _ = _transcriber(looped, trim_to_voice=True, collapse_repeats=False)
    assert kept.transcribe(audio).text == looped  # type: ignore[attr-defined]


def test_the_sequential_decoder_is_faster_whispers_own_greedy_and_deterministic() -> None:
    # `decoder: sequential` (docs/hearing.md): its temperature fallback changed nothing on the edge set and
    # samples at random when it fires, so it is off.
    transcriber, pipeline = _transcriber("Hello there.", decoder="sequential")
    assert transcriber.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32)).text == "Hello there."  # type: ignore[attr-defined]
    options = pipeline.model.options
    assert options["temperature"] == 0.0
    assert options["condition_on_previous_text"] is False
    assert options["vad_filter"] is False
    assert options["hotwords"] == "Celeste"
    assert len(pipeline.heard) == 1


def test_audio_longer_than_one_window_goes_to_the_batched_decoder_cut_at_pauses() -> None:
    # The sequential decoder, seeking by its own timestamps past 30 s, looped a sentence ten times on a 47 s
    # call; the batched one takes long audio in pieces cut at pauses.
    transcriber, pipeline = _transcriber("Hello there.", decoder="sequential")
    transcriber.transcribe(np.zeros(29 * SAMPLE_RATE, dtype=np.float32))  # type: ignore[attr-defined]
    assert pipeline.model.options, "within one window: the sequential decoder"
    pipeline.model.options = {}
    transcriber.transcribe(np.zeros(31 * SAMPLE_RATE, dtype=np.float32))  # type: ignore[attr-defined]
    assert not pipeline.model.options, "past one window: the batched pipeline"
    assert len(pipeline.heard) == 2
