"""Whether the voice changed: the speech after a point is another speaker's than the speech before it.

The endpointer asks this where someone may have taken over (after a short gap, or every second of speech
without one), so that a quick answer ends the previous speaker's turn. Both sides are embedded with the
voice encoder and compared by cosine similarity: below `threshold`, two voices. The embeddings are
dropped at once; nothing is kept or written.
"""

from __future__ import annotations

import numpy as np

from machine.ports import FloatAudio, VoiceEmbedder

__all__ = ["SpeakerChange"]


class SpeakerChange:
    """`changed(before, after)`: whether two stretches of speech are different voices."""

    def __init__(self, encoder: VoiceEmbedder, threshold: float) -> None:
        self._encoder = encoder
        self._threshold = threshold

    def similarity(self, before: FloatAudio, after: FloatAudio) -> float:
        """Cosine similarity of the two voices (the encoder's vectors are unit length)."""
        return float(np.dot(self._encoder.embed(before), self._encoder.embed(after)))

    def changed(self, before: FloatAudio, after: FloatAudio) -> bool:
        """Whether `after` is another speaker's voice than `before`."""
        return self.similarity(before, after) < self._threshold
