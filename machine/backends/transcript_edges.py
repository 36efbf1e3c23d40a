"""Keeping whisper from inventing words at a segment's edges (issue #25 item 2).

An endpointed utterance carries its pre-roll and tail: silence, low noise, a breath. Whisper (tiny.en,
greedy) fills such stretches with words and, on short audio, can loop a word ("Hello. Hello. Hello. ...").
Two guards, both measured in bench/transcription_edges.py:

- `voice_span`: the audio is cut to the stretch silero-vad hears as voice, plus a pad, before whisper;
- `collapse_repeats`: a word or phrase written three or more times in a row, more often than the voice in
  the audio is long enough to hold, is written once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from machine.ports import CHUNK_SAMPLES, SAMPLE_RATE, FloatAudio

VOICED = 0.5
"""silero-vad's speech probability from which a chunk counts as voice (its own default threshold)."""
MIN_REPEATS = 3
SECONDS_PER_REPEATED_WORD = 0.5
"""Voice a word said again and again on purpose takes at least, each time ("Hello? Hello? Hello?"). A fast
"no, no, no" (about 0.3 s each) is written once too: the meaning stays, and a loop is much worse."""
SECONDS_PER_OTHER_WORD = 0.1
"""Voice any other word takes at least (fast speech is about 0.15-0.2 s a word)."""
_MAX_PHRASE_WORDS = 4


@dataclass(frozen=True)
class VoiceSpan:
    start: int
    end: int
    voiced_s: float
    """Seconds of the audio silero-vad hears as voice."""


def voice_span(samples: FloatAudio, probability: Callable[[FloatAudio], float], pad: int) -> VoiceSpan:
    """The samples from `pad` before the first voiced chunk to `pad` after the last one; the whole audio
    when no chunk is voiced (the endpointer heard speech there, so nothing is thrown away)."""
    voiced = [
        index
        for index in range(len(samples) // CHUNK_SAMPLES)
        if probability(samples[index * CHUNK_SAMPLES : (index + 1) * CHUNK_SAMPLES]) >= VOICED
    ]
    if not voiced:
        return VoiceSpan(0, len(samples), len(samples) / SAMPLE_RATE)
    start = max(0, voiced[0] * CHUNK_SAMPLES - pad)
    end = min(len(samples), (voiced[-1] + 1) * CHUNK_SAMPLES + pad)
    return VoiceSpan(start, end, len(voiced) * CHUNK_SAMPLES / SAMPLE_RATE)


def _key(token: str) -> str:
    return re.sub(r"[^\w']", "", token.lower())


def collapse_repeats(text: str, voiced_s: float) -> str:
    """`text` with every run of `MIN_REPEATS` or more identical phrases (1-4 words, compared without case
    and punctuation) written once, where `voiced_s` seconds of voice are too short to have said the run
    (at `SECONDS_PER_REPEATED_WORD` a word) besides the other words (at `SECONDS_PER_OTHER_WORD`)."""
    tokens = text.split()
    keys = [_key(token) for token in tokens]
    out: list[str] = []
    at = 0
    while at < len(tokens):
        collapsed = False
        for size in range(1, _MAX_PHRASE_WORDS + 1):
            phrase = keys[at : at + size]
            if len(phrase) < size or not all(phrase):
                break
            count = 1
            while keys[at + count * size : at + (count + 1) * size] == phrase:
                count += 1
            run_words = count * size
            needed = (
                run_words * SECONDS_PER_REPEATED_WORD + (len(tokens) - run_words) * SECONDS_PER_OTHER_WORD
            )
            if count >= MIN_REPEATS and needed > voiced_s:
                # The first copy, ending as the run ends ("No, no, no." -> "No.").
                last = tokens[at + run_words - 1]
                ending = last[len(last.rstrip(".,!?;:")) :]
                out.extend([*tokens[at : at + size - 1], tokens[at + size - 1].rstrip(".,!?;:") + ending])
                at += run_words
                collapsed = True
                break
        if not collapsed:
            out.append(tokens[at])
            at += 1
    return " ".join(out)
