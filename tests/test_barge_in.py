"""Barge-in on real speech: the bot's own echo never triggers it; a louder user does."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from machine.barge_in import BargeInDetector
from machine.endpointing import dbfs
from machine.ports import CHUNK_SAMPLES, AudioChunk
from machine.vad.silero import SileroVoiceActivity

pytestmark = pytest.mark.models

REPLY = "The moon does things her own way. She has light of her own, not like the stars we see at night."


def chunks(audio: np.ndarray) -> list[np.ndarray]:
    return list(audio[: len(audio) // CHUNK_SAMPLES * CHUNK_SAMPLES].reshape(-1, CHUNK_SAMPLES))


def run(detector: BargeInDetector, played: np.ndarray, heard: np.ndarray, latency_chunks: int) -> int | None:
    """Feed what is heard against the playback reference; the chunk index of the barge-in, if any."""
    reference = chunks(played)
    heard_chunks = chunks(heard)
    for index, ref in enumerate(reference):
        source = index - latency_chunks
        samples = (
            heard_chunks[source] if 0 <= source < len(heard_chunks) else np.zeros(CHUNK_SAMPLES, np.float32)
        )
        if detector.push(AudioChunk(samples.astype(np.float32), 0.0), dbfs(ref)):
            return index
    return None


def detector() -> BargeInDetector:
    return BargeInDetector(SileroVoiceActivity(), vad_threshold=0.5, hold_ms=480, margin_db=6.0)


@pytest.mark.parametrize("latency_chunks", [0, 3, 8])
def test_echo_alone_never_barges_in(speak_16k: Callable[[str], np.ndarray], latency_chunks: int) -> None:
    bot = speak_16k(REPLY)
    d = detector()
    for _ in range(3):  # three replies in a row
        assert run(d, bot, bot, latency_chunks) is None
        d.reset()


def test_a_louder_user_barges_in_and_their_speech_is_held(speak_16k: Callable[[str], np.ndarray]) -> None:
    bot = 0.3 * speak_16k(REPLY)
    user = speak_16k("Wait, wait, stop talking please, I have a question.")
    user = np.clip(2.0 * user / np.max(np.abs(user)), -1.0, 1.0)
    start = 16_000  # the user starts one second into the reply
    heard = bot.copy()
    heard[start : start + len(user)] += user[: len(heard) - start]
    d = detector()
    index = run(d, bot, np.clip(heard, -1.0, 1.0), latency_chunks=3)
    assert index is not None, "the user was never detected"
    delay_s = (index - 3) * CHUNK_SAMPLES / 16_000 - 1.0
    assert 0.4 <= delay_s <= 2.5
    assert len(d.held) >= 8, "the user's speech so far is kept for the endpointer"
