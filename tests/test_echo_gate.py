"""The echo gate on synthetic levels: it learns the echo path's delay and gain from what it hears while the
bot plays, masks the bot's own echo (also after the bot stops, for as long as the path's delay), and lets
a new voice through at once, even one quieter than the bot when the cable carries no echo."""

from __future__ import annotations

import numpy as np
import pytest

from machine.listen.echo_gate import EchoGate
from machine.ports import CHUNK_SAMPLES, AudioChunk
from machine.shared.levels import SLOT_S, PlaybackLevels


def at_level(db: float, seed: int = 0) -> np.ndarray:
    """A chunk of noise with an RMS level of `db` dBFS (or digital silence below -119)."""
    if db <= -119:
        return np.zeros(CHUNK_SAMPLES, dtype=np.float32)
    noise = np.random.default_rng(seed).standard_normal(CHUNK_SAMPLES)
    return (noise / np.sqrt(np.mean(noise**2)) * 10 ** (db / 20)).astype(np.float32)


def speech_like_levels(seconds: float, seed: int = 1) -> list[float]:
    """Playback levels of a voice: syllables between -35 and -18 dBFS, with short gaps."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(-35, -18, int(seconds / SLOT_S))
    levels[rng.random(len(levels)) < 0.15] = -70.0
    return list(levels)


def play(levels: PlaybackLevels, played: list[float], start_slot: int) -> None:
    for offset, level in enumerate(played):
        levels.record((start_slot + offset + 0.5) * SLOT_S, level)


def hear(gate: EchoGate, slot: int, level_db: float, seed: int = 0) -> bool:
    return gate.is_new_voice(AudioChunk(at_level(level_db, seed), (slot + 0.5) * SLOT_S))


START = 1000  # slots: a time well after the start of the history


def test_nothing_played_means_every_chunk_is_a_new_voice() -> None:
    gate = EchoGate(PlaybackLevels(), margin_db=6.0, max_delay_ms=1500)
    assert all(hear(gate, START + i, -50.0) for i in range(20))


def test_before_learning_anything_as_loud_as_the_playback_could_be_echo() -> None:
    levels = PlaybackLevels()
    play(levels, [-20.0] * 10, START)
    gate = EchoGate(levels, margin_db=6.0, max_delay_ms=1500)
    assert not hear(gate, START + 5, -22.0), "unlearned: the echo may be as loud as the playback"
    assert hear(gate, START + 5, -10.0), "a voice 10 dB above the playback is a new voice"


def test_a_silent_cable_teaches_that_a_quiet_user_is_a_new_voice_even_right_after_the_bot() -> None:
    """Separate virtual cables: the input is digital silence while the bot plays. After a second of playback
    a user 10 dB quieter than the bot is heard over it, and right as the bot stops (the old blind tail)."""
    levels = PlaybackLevels()
    played = speech_like_levels(4.0)
    play(levels, played, START)
    gate = EchoGate(levels, margin_db=6.0, max_delay_ms=1500)
    for i in range(80):  # 2.6 s: long enough for an echo as late as the longest delay to have shown
        hear(gate, START + i, -120.0)
    assert gate.path.learned and not gate.path.carries_echo
    assert hear(gate, START + 85, -30.0), "a user under the bot's level, while it plays"
    assert hear(gate, START + len(played) + 1, -30.0), "a user who starts as the bot finishes"


@pytest.mark.parametrize("delay_slots", [0, 3, 31])
def test_a_delayed_echo_is_learned_and_masked_until_it_has_died_away(delay_slots: int) -> None:
    """A loopback returning the bot's voice `delay_slots` later at -3 dB (31 slots: about 1 s). Once learned,
    no echo chunk passes, also in the tail after the bot stopped, while a user 10 dB above the echo does."""
    levels = PlaybackLevels()
    played = speech_like_levels(6.0)
    play(levels, played, START)
    gate = EchoGate(levels, margin_db=6.0, max_delay_ms=1500)
    echo = [-120.0] * delay_slots + [level - 3.0 for level in played] + [-120.0] * 40
    passed, learned = [], []
    for i, level in enumerate(echo):
        passed.append(hear(gate, START + i, level, seed=i))
        learned.append(gate.path.learned)
    assert gate.path.shortest_slots <= delay_slots <= gate.path.longest_slots
    assert gate.path.longest_slots - gate.path.shortest_slots <= 18, "one delay, widened by the drift"
    assert gate.path.gain_db == pytest.approx(-3.0, abs=1.5)
    assert learned.index(True) <= 100, "learned within about 3 s of playback"
    loud_echo = [i for i, level in enumerate(echo) if level > -60]
    assert not any(passed[i] for i in loud_echo), "the bot's own echo is never a new voice, learned or not"
    if delay_slots:
        assert any(i >= len(played) for i in loud_echo), "the test covers the echo tail after the bot stopped"
    user_slot = START + delay_slots + 100
    assert hear(gate, user_slot, echo[delay_slots + 100] + 12.0, seed=7), "a louder user over the echo"


def test_the_history_reports_silence_for_slots_never_played_or_since_overwritten() -> None:
    levels = PlaybackLevels()
    levels.record(5 * SLOT_S, -20.0)
    levels.record(5.5 * SLOT_S, -10.0)
    assert list(levels.slots(4, 6)) == [-120.0, -10.0, -120.0], "the loudest block of a slot wins"
    wrapped = 5 + round(20.0 / SLOT_S) + 1
    for slot in range(6, wrapped + 1):
        levels.record(slot * SLOT_S, -30.0)
    assert levels.slots(5, 5)[0] == -120.0, "a slot older than the history is silence, not a stale level"


def test_an_echo_whose_delay_moves_between_replies_is_still_masked() -> None:
    """A loopback that adapts its latency: the first reply comes back 39 slots late (1.25 s), the next
    32 slots (1.02 s), as measured over PulseAudio's module-loopback, then 36. No reply's echo passes as a
    new voice (before the fix the mixed seconds read as "no echo" and whole replies passed)."""
    levels = PlaybackLevels()
    gate = EchoGate(levels, margin_db=6.0, max_delay_ms=1500)
    passed: list[int] = []
    start = START
    for reply, delay in enumerate((39, 32, 36)):
        played = speech_like_levels(1.4, seed=reply + 1)
        play(levels, played, start)
        echo = [-120.0] * delay + [level - 3.0 for level in played] + [-120.0] * 60
        for i, level in enumerate(echo):
            if hear(gate, start + i, level, seed=i) and level > -60:
                passed.append(start + i)
        start += len(echo) + 50  # silence between replies
    assert passed == [], f"{len(passed)} echo chunks passed as a new voice"
