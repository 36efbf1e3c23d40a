"""Telling speakers apart within a session: "speaker 1", "speaker 2", …, and their names once they say them.

Each utterance's voice embedding (:mod:`machine.backends.voice_encoder`) is compared with every speaker heard
in the session (cosine similarity with the mean of their utterances' embeddings). The closest one at or
above `threshold` said it, and their mean moves towards it; otherwise a new speaker is numbered. The
threshold is measured on the crowd benchmark's voices (`bench/crowd.py`).

A speaker who says their name ("I'm Robin", "my name is Robin", "call me Robin") is called by it from then
on. Embeddings are biometric: they live here, in memory, for the session only; `forget()` drops them all
(a session reset or expiry), and nothing here is written anywhere.

A session in a busy world can hear hundreds of voices over an evening: at most `MAX_SPEAKERS` are kept,
the one heard least recently making room for a new voice (numbers are never reused).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from machine.shared.names import name_said

__all__ = ["MAX_SPEAKERS", "Speaker", "SpeakerTracker"]

MAX_SPEAKERS = 64
"""Voices kept per session (each a 256-float mean): the least recently heard goes first."""


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
        self._numbered = 0

    @property
    def speakers(self) -> tuple[Speaker, ...]:
        """Everyone heard in this session (at most `MAX_SPEAKERS`), in order of first appearance."""
        return tuple(sorted(self._speakers, key=lambda speaker: speaker.number))

    def identify(
        self, embedding: np.ndarray, transcript: str = "", learn: bool = True, in_view: str | None = None
    ) -> Speaker:
        """Who said an utterance with this voice (a known speaker, or a new one), learning the voice and a
        name said; with `learn` off, who it would be, the session's speakers left as they are.

        `in_view`: the one player the bot sees (a nameplate); a speaker without a name takes it, unless
        another speaker already has it (a name said always wins)."""
        best, best_similarity = None, -1.0
        for speaker in self._speakers:
            similarity = float(np.dot(embedding, speaker.voice) / max(np.linalg.norm(speaker.voice), 1e-9))
            if similarity > best_similarity:
                best, best_similarity = speaker, similarity
        name = name_said(transcript, self._bot_name)
        if best is None or best_similarity < self._threshold:
            best = Speaker(number=self._numbered + 1, voice=np.zeros_like(embedding))
            if learn:
                self._numbered += 1
                if len(self._speakers) >= MAX_SPEAKERS:
                    del self._speakers[0]  # heard least recently (see below)
                self._speakers.append(best)
        if name is None and best.name is None and in_view is not None:
            name = in_view if all(speaker.name != in_view for speaker in self._speakers) else None
        if not learn:
            return Speaker(best.number, name or best.name, best.utterances)
        self._speakers.remove(best)  # the list runs from least to most recently heard
        self._speakers.append(best)
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
        self._numbered = 0
