"""Guards against words whisper invents at a segment's edges (issue #25 item 2), without a model."""

from __future__ import annotations

import numpy as np
import pytest
from bench_modules import bench_module

from machine.backends.transcript_edges import VoiceSpan, collapse_repeats, voice_span
from machine.ports import CHUNK_SAMPLES, SAMPLE_RATE
from machine.settings import TranscriberSettings

edge_measures = bench_module("edge_measures")


def loud(chunk: np.ndarray) -> float:
    """A stand-in for silero-vad: a chunk louder than -30 dBFS is voice."""
    return 1.0 if float(np.sqrt(np.mean(np.square(chunk)))) > 0.03 else 0.0


def test_a_word_looped_on_short_audio_is_written_once() -> None:
    # What tiny.en wrote for the opening of pyannote's sample call (two people saying "Hello?" once each).
    # silero-vad hears 2.9 s of voice in that segment: not enough for six deliberate hellos and six words.
    looped = "Hello. Hello. Hello. Hello. Hello. Hello. I didn't know you were there."
    assert collapse_repeats(looped, 2.9) == "Hello. I didn't know you were there."


def test_a_phrase_looped_is_written_once_and_the_rest_is_kept() -> None:
    assert (
        collapse_repeats("I said thank you, thank you, thank you so much", 1.5) == "I said thank you so much"
    )


def test_repeats_the_audio_can_hold_are_kept() -> None:
    assert collapse_repeats("No, no, no.", 1.6) == "No, no, no."
    assert (
        collapse_repeats("Hello? Hello? Hello? Is anyone there?", 1.9)
        == "Hello? Hello? Hello? Is anyone there?"
    )
    assert collapse_repeats("Hello? Hello?", 0.5) == "Hello? Hello?"
    assert collapse_repeats("This is Diane in New Jersey.", 0.5) == "This is Diane in New Jersey."


def test_the_collapse_keeps_the_first_copy_and_the_runs_ending() -> None:
    assert collapse_repeats("No, no, no.", 0.8) == "No."


def test_the_audio_is_cut_to_its_voice_plus_the_pad() -> None:
    rng = np.random.default_rng(0)
    silence, voice = int(0.96 * SAMPLE_RATE), int(0.64 * SAMPLE_RATE)
    audio = np.concatenate(
        [
            (0.003 * rng.standard_normal(silence)).astype(np.float32),  # noise at -50 dBFS
            (0.1 * np.sin(np.arange(voice) * 0.2)).astype(np.float32),
            np.zeros(2 * silence, dtype=np.float32),
        ]
    )
    pad = int(0.2 * SAMPLE_RATE)
    span = voice_span(audio, loud, pad)
    assert span.start == silence - pad
    assert span.end == silence + voice + pad
    assert span.voiced_s == voice / SAMPLE_RATE


def test_audio_without_voice_is_kept_whole() -> None:
    audio = np.zeros(SAMPLE_RATE, dtype=np.float32)
    assert voice_span(audio, loud, 3200) == VoiceSpan(0, SAMPLE_RATE, 1.0)


def test_the_pad_never_reaches_past_the_audio() -> None:
    audio = np.full(4 * CHUNK_SAMPLES, 0.1, dtype=np.float32)
    assert voice_span(audio, loud, 10 * CHUNK_SAMPLES) == VoiceSpan(0, len(audio), len(audio) / SAMPLE_RATE)


def test_the_guards_are_on_by_default() -> None:
    # Chosen on bench/transcription_edges.py (docs/hearing.md, "Words whisper invents").
    settings = TranscriberSettings()
    assert settings.decoder == "batched"  # the sequential one is not settled (docs/hearing.md)
    assert settings.trim_to_voice
    assert settings.trim_pad_ms == 300
    assert settings.collapse_repeats


@pytest.mark.parametrize(
    ("said", "heard", "inserted"),
    [
        ("Hello?", "Hello.", 0),
        ("I play the violin.", "Thank you. I play the violin.", 2),
        ("I play the violin.", "I play the violin. Bye.", 1),
        ("I play the violin.", "I play my lady.", 0),
        ("Yes.", "", 0),
    ],
)
def test_edge_insertions_count_words_around_the_script(said: str, heard: str, inserted: int) -> None:
    assert edge_measures.edge_insertions(said, heard) == inserted


def test_a_hallucinated_repeat_is_one_the_script_does_not_have() -> None:
    assert edge_measures.hallucinated_repeat("Hello? Hello? Oh, hello.", "Hello. Hello. Hello. Hello.")
    assert not edge_measures.hallucinated_repeat("No, no, no.", "No, no, no.")
    assert not edge_measures.hallucinated_repeat("Hello? Hello?", "Hello. Hello.")
    assert edge_measures.hallucinated_repeat("Thank you so much.", "Thank you, thank you, thank you so much.")


def test_fillers_are_not_errors() -> None:
    assert edge_measures.edge_insertions("We went hiking.", "Um, we went hiking.") == 0
    assert edge_measures.word_error_rate([("We went hiking.", "Uh, we went hiking.")]) == 0.0
