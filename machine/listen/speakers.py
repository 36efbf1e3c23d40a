"""Telling speakers apart within a session: "speaker 1", "speaker 2", …, and their names once they say them.

Each utterance's voice embedding (:mod:`machine.listen.voice_encoder`) is compared with every speaker heard
in the session (cosine similarity with the mean of their utterances' embeddings). The closest one at or
above `threshold` said it, and their mean moves towards it; otherwise a new speaker is numbered. The
threshold is measured on the crowd benchmark's voices (`bench/crowd.py`).

A speaker who says their name ("I'm Robin", "my name is Robin", "call me Robin") is called by it from then
on. Embeddings are biometric: they live here, in memory, for the session only; `forget()` drops them all
(a session reset or expiry), and nothing here is written anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Speaker", "SpeakerTracker", "name_said"]

_NAME = re.compile(
    r"\b(?i:i'?m|i am|my name is|my name's|call me|this is|it's)\s+([A-Z][a-z]+(?:-[A-Z][a-z]+)?)\b"
)
_NOT_NAMES = frozenset(
    {
        *("Fine", "Good", "Okay", "Ok", "Great", "Here", "Back", "Sorry", "Sure", "Not", "Just", "So"),
        *("Very", "Really", "Happy", "Tired", "Hungry", "Going", "Also", "Still", "Done", "Ready", "Well"),
        *("Bored", "Busy", "Home", "New", "Glad", "Excited", "Talking", "Trying", "Listening", "Thinking"),
    }
)
"""Words that follow "I'm" capitalised (at a sentence start, or by whisper) and are not names."""


def name_said(transcript: str, bot_name: str = "") -> str | None:
    """The name a speaker gives for themselves in `transcript`, if they give one."""
    for match in _NAME.finditer(transcript.replace("’", "'")):
        name = match.group(1)
        if name not in _NOT_NAMES and name.lower() != bot_name.lower():
            return name
    return None


@dataclass
class Speaker:
    """One voice of the session."""

    number: int
    name: str | None = None
    utterances: int = 0
    voice: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32), repr=False)
    """The mean of their utterances' embeddings (biometric: in memory only, for the session)."""

    @property
    def label(self) -> str:
        """How the bot calls them: their name, or "speaker N"."""
        return self.name or f"speaker {self.number}"


class SpeakerTracker:
    """The session's speakers. Not thread-safe: one caller (the runtime's turn jobs) at a time."""

    def __init__(self, threshold: float, bot_name: str = "") -> None:
        self._threshold = threshold
        self._bot_name = bot_name
        self._speakers: list[Speaker] = []

    @property
    def speakers(self) -> tuple[Speaker, ...]:
        """Everyone heard in this session, in order of first appearance."""
        return tuple(self._speakers)

    def identify(self, embedding: np.ndarray, transcript: str = "", learn: bool = True) -> Speaker:
        """Who said an utterance with this voice (a known speaker, or a new one), learning the voice and a
        name said; with `learn` off, who it would be, the session's speakers left as they are."""
        best, best_similarity = None, -1.0
        for speaker in self._speakers:
            similarity = float(np.dot(embedding, speaker.voice) / max(np.linalg.norm(speaker.voice), 1e-9))
            if similarity > best_similarity:
                best, best_similarity = speaker, similarity
        name = name_said(transcript, self._bot_name)
        if best is None or best_similarity < self._threshold:
            best = Speaker(number=len(self._speakers) + 1, voice=np.zeros_like(embedding))
            if learn:
                self._speakers.append(best)
        if not learn:
            return Speaker(best.number, name or best.name, best.utterances)
        best.voice = (best.voice * best.utterances + embedding) / (best.utterances + 1)
        best.utterances += 1
        if name is not None:
            best.name = name
        return best

    def forget(self) -> None:
        """Drop every speaker and their voice (the session ended)."""
        for speaker in self._speakers:
            speaker.voice = np.zeros(0, dtype=np.float32)
        self._speakers.clear()
