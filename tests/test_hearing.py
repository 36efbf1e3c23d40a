"""The bot's ears on synthetic signals with a known timeline: what is heard while it speaks, right after,
and while it is busy, with the echo gate learning the echo path on the way."""

from __future__ import annotations

import pytest
from test_echo_gate import at_level, speech_like_levels
from test_endpointing import LoudnessVad

from machine.listen.echo_gate import EchoGate
from machine.listen.endpointing import Endpointer
from machine.listen.hearing import Hearing
from machine.ports import CHUNK_SAMPLES, AudioChunk, Heard, Mode
from machine.settings import EndpointingSettings
from machine.shared.levels import SLOT_S, PlaybackLevels

START = 1000


def ears(levels: PlaybackLevels, barge_in_ms: int | None) -> Hearing:
    gate = EchoGate(levels, margin_db=6.0, max_delay_ms=1500)
    return Hearing(Endpointer(LoudnessVad(), EndpointingSettings()), gate, barge_in_ms, max_held_s=60)


def feed(hearing: Hearing, levels_db: list[float], first_slot: int) -> list[tuple[int, Heard]]:
    """Chunks at the given levels, one per slot; returns (slot, what it led to) for every outcome."""
    out = []
    for offset, level in enumerate(levels_db):
        slot = first_slot + offset
        heard = hearing.hear(AudioChunk(at_level(level, seed=slot), (slot + 0.5) * SLOT_S))
        if heard is not None:
            out.append((slot, heard))
    return out


def bot_plays(levels: PlaybackLevels, played: list[float], first_slot: int) -> None:
    for offset, level in enumerate(played):
        levels.record((first_slot + offset + 0.5) * SLOT_S, level)


def test_a_user_who_talks_over_the_first_reply_of_a_run_barges_in_and_keeps_their_first_words() -> None:
    """Separate cables, first reply of a run: the echo path is not known yet when the user starts (0.6 s in),
    so their chunks wait to be judged; once the gate has learned that the cable carries no echo, they are
    judged a new voice, the bot is stopped, and the utterance starts with their first word."""
    levels = PlaybackLevels()
    played = speech_like_levels(8.0)
    bot_plays(levels, played, START)
    hearing = ears(levels, barge_in_ms=480)
    hearing.set_mode(Mode.SPEAKING)
    user_from = 19  # about 0.6 s into the reply, the user talks 8 dB under the bot's loudest syllables
    signal = [-120.0] * user_from + [-26.0] * 60 + [-120.0] * 40
    outcomes = feed(hearing, signal, START)
    assert [heard.barge_in for _, heard in outcomes] == [True], outcomes
    barged_at = outcomes[0][0] - START
    assert barged_at < 100, "judged as soon as the echo path is known (about 2.4 s into the first reply)"
    held = hearing.set_mode(Mode.LISTENING)
    assert held is not None, "what the user said while the bot spoke is this turn's"
    voiced = [
        i for i in range(0, len(held.samples), CHUNK_SAMPLES) if abs(held.samples[i : i + 512]).max() > 0
    ]
    assert len(voiced) >= 58, "every chunk of the user's speech is in the utterance, the first ones too"


def test_once_the_path_is_known_a_barge_in_takes_about_barge_in_ms() -> None:
    levels = PlaybackLevels()
    bot_plays(levels, speech_like_levels(12.0), START)
    hearing = ears(levels, barge_in_ms=480)
    hearing.set_mode(Mode.SPEAKING)
    assert feed(hearing, [-120.0] * 150, START) == [], "a silent cable while the bot speaks"
    outcomes = feed(hearing, [-26.0] * 40, START + 150)
    assert [heard.barge_in for _, heard in outcomes] == [True]
    took_ms = (outcomes[0][0] - (START + 150) + 1) * SLOT_S * 1000
    assert took_ms <= 480 + 3 * 32, f"{took_ms:.0f} ms"


@pytest.mark.parametrize("barge_in_ms", [None, 480])
def test_a_one_second_echo_is_never_heard_as_a_user_while_or_after_the_bot_speaks(
    barge_in_ms: int | None,
) -> None:
    """A loopback returns the bot's voice 1 s later at -3 dB, for every reply, and for a second after each."""
    levels = PlaybackLevels()
    hearing = ears(levels, barge_in_ms)
    slot = START
    for reply in range(3):
        played = speech_like_levels(4.0, seed=reply)
        bot_plays(levels, played, slot)
        echo = [-120.0] * 31 + [level - 3.0 for level in played]
        hearing.set_mode(Mode.SPEAKING)
        assert feed(hearing, echo[: len(played)], slot) == []
        slot += len(played)
        assert hearing.set_mode(Mode.LISTENING) is None
        assert feed(hearing, echo[len(played) :] + [-120.0] * 30, slot) == [], f"reply {reply}: the echo tail"
        slot += len(echo) - len(played) + 30
    assert hearing.dropped_s == 0.0, "nothing was taken for speech, so nothing was dropped"


def test_half_duplex_drops_a_user_over_the_bot_and_counts_it() -> None:
    levels = PlaybackLevels()
    bot_plays(levels, speech_like_levels(12.0), START)
    hearing = ears(levels, barge_in_ms=None)
    hearing.set_mode(Mode.SPEAKING)
    feed(hearing, [-120.0] * 150 + [-26.0] * 40 + [-120.0] * 30, START)
    assert hearing.dropped_s >= 40 * SLOT_S
    assert hearing.set_mode(Mode.LISTENING) is None


def test_speech_while_busy_is_held_and_joined_for_the_next_turn() -> None:
    hearing = Hearing(Endpointer(LoudnessVad(), EndpointingSettings()), None, None, max_held_s=60)
    hearing.set_mode(Mode.LISTENING)
    first = feed(hearing, [-20.0] * 20 + [-120.0] * 20, START)
    assert len(first) == 1 and first[0][1].utterance is not None
    assert feed(hearing, [-20.0] * 20 + [-120.0] * 20 + [-20.0] * 15 + [-120.0] * 20, START + 40) == []
    assert hearing.held_s > (20 + 15) * SLOT_S
    held = hearing.set_mode(Mode.LISTENING)
    assert held is not None and hearing.held_s == 0.0
    hearing.set_mode(Mode.BUSY)
    feed(hearing, [-20.0] * 20 + [-120.0] * 20, START + 200)
    assert hearing.held_s > 0
    hearing.set_mode(Mode.OFF)
    assert hearing.held_s == 0.0, "a reset drops what was held"


def early_ears(retract_ms: int = 0, gate: EchoGate | None = None, barge_in_ms: int | None = None) -> Hearing:
    return Hearing(
        Endpointer(LoudnessVad(), EndpointingSettings()),
        gate,
        barge_in_ms,
        max_held_s=60,
        speculate=True,
        retract_ms=retract_ms,
    )


def words_and_pause(words: int, pause: int) -> list[float]:
    return [-20.0] * words + [-120.0] * pause


def test_a_pause_hands_the_speech_on_early_and_its_end_confirms_it() -> None:
    hearing = early_ears()
    hearing.set_mode(Mode.LISTENING)
    outcomes = feed(hearing, words_and_pause(15, 30), START)
    assert [(h.final, h.confirmed) for _, h in outcomes] == [(False, False), (True, True)]
    early, confirmed = outcomes[0][1], outcomes[1][1]
    assert early.utterance is not None and early.early_id == confirmed.early_id == 1
    assert not hearing.listening, "busy now: the next speech is held for the next turn"


def test_speech_after_a_pause_voids_the_early_utterance_and_continues_it() -> None:
    hearing = early_ears()
    hearing.set_mode(Mode.LISTENING)
    outcomes = feed(hearing, words_and_pause(15, 8) + words_and_pause(10, 30), START)
    kinds = [
        ("early" if not h.final else "confirmed" if h.confirmed else "resumed" if h.resumed else "?")
        for _, h in outcomes
    ]
    assert kinds == ["early", "resumed", "early", "confirmed"]
    first, second = outcomes[0][1].utterance, outcomes[2][1].utterance
    assert first is not None and second is not None
    assert len(second.samples) > len(first.samples) + 10 * CHUNK_SAMPLES, "one utterance, both parts"
    assert outcomes[2][1].early_id == 2


def test_an_early_turn_that_closed_first_does_not_answer_the_same_speech_again() -> None:
    """The early utterance had no words (or no reply): its turn closed while the speaker was still
    silent; when their turn ends, that speech is not handed on a second time."""
    hearing = early_ears()
    hearing.set_mode(Mode.LISTENING)
    outcomes = feed(hearing, words_and_pause(15, 8), START)
    assert len(outcomes) == 1 and not outcomes[0][1].final
    assert hearing.set_mode(Mode.LISTENING) is None and not hearing.listening, (
        "listening again changes nothing: the early utterance is still pending"
    )
    hearing.drop_early(outcomes[0][1].early_id)
    assert hearing.listening
    assert feed(hearing, [-120.0] * 30, START + 23) == [], "the end of that speech is not news"
    again = feed(hearing, words_and_pause(15, 30), START + 60)
    assert [(h.final, h.confirmed) for _, h in again] == [(False, False), (True, True)], (
        "the next speech is heard as usual: early at its pause, confirmed at its end"
    )


def test_without_speculation_only_the_end_of_a_turn_is_handed_on() -> None:
    hearing = Hearing(Endpointer(LoudnessVad(), EndpointingSettings()), None, None, max_held_s=60)
    hearing.set_mode(Mode.LISTENING)
    outcomes = feed(hearing, words_and_pause(15, 8) + words_and_pause(10, 30), START)
    assert len(outcomes) == 1 and outcomes[0][1].final and not outcomes[0][1].confirmed


def test_speech_after_the_end_of_a_turn_but_before_the_reply_joins_it() -> None:
    """A turn-end model can be wrong: until the bot starts to answer aloud, a speaker who goes on voids
    the turn, and what they said before is put in front of what they say now."""
    hearing = early_ears()
    hearing.set_mode(Mode.LISTENING)
    first = feed(hearing, words_and_pause(15, 30), START)
    assert [(h.final, h.confirmed) for _, h in first] == [(False, False), (True, True)]
    resumed = feed(hearing, words_and_pause(10, 30), START + 45)
    assert resumed[0][1].resumed and resumed[0][1].early_id == first[-1][1].early_id
    joined = resumed[1][1].utterance
    assert joined is not None and not resumed[1][1].final
    earlier = first[0][1].utterance
    assert earlier is not None and len(joined.samples) >= len(earlier.samples) + 10 * CHUNK_SAMPLES


def test_once_the_bot_speaks_the_turn_is_final() -> None:
    hearing = early_ears()
    hearing.set_mode(Mode.LISTENING)
    feed(hearing, words_and_pause(15, 30), START)
    hearing.set_mode(Mode.SPEAKING)
    assert not any(h.resumed for _, h in feed(hearing, words_and_pause(10, 30), START + 45))


@pytest.mark.parametrize("barge_in_ms", [None, 480])
def test_a_speaker_who_goes_on_just_after_the_reply_started_retracts_it(barge_in_ms: int | None) -> None:
    """The end of the turn was guessed wrong: within `retract_ms` of the bot starting to answer, the
    speaker's next words retract the reply at their start (3 chunks, 96 ms, in both barge-in modes), and
    what they said before is put in front of what they say now."""
    hearing = early_ears(retract_ms=1500, barge_in_ms=barge_in_ms)
    hearing.set_mode(Mode.LISTENING)
    first = feed(hearing, words_and_pause(15, 30), START)
    hearing.set_mode(Mode.SPEAKING)
    went_on_at = START + 45 + 10  # 320 ms into the reply
    outcomes = feed(hearing, [-120.0] * 10 + words_and_pause(10, 30), START + 45)
    assert outcomes[0][1].resumed and outcomes[0][1].early_id == first[-1][1].early_id
    assert outcomes[0][0] - went_on_at + 1 == 3, "retracted at the third chunk of the new words"
    joined = outcomes[-1][1].utterance
    earlier = first[0][1].utterance
    assert joined is not None and earlier is not None
    assert len(joined.samples) >= len(earlier.samples) + 10 * CHUNK_SAMPLES, "both halves, one utterance"


def test_after_the_retract_window_the_reply_stands() -> None:
    hearing = early_ears(retract_ms=1500)
    hearing.set_mode(Mode.LISTENING)
    feed(hearing, words_and_pause(15, 30), START)
    hearing.set_mode(Mode.SPEAKING)
    window = 1500 // 32 + 1
    assert not any(
        h.resumed for _, h in feed(hearing, [-120.0] * window + words_and_pause(10, 30), START + 45)
    )
    assert hearing.dropped_s > 0, "half-duplex: speech over the bot after the window is dropped, as before"


def test_listening_waits_for_an_utterance_still_on_its_way_but_never_after_a_reset() -> None:
    hearing = early_ears()
    hearing.set_mode(Mode.LISTENING)
    handed = feed(hearing, words_and_pause(15, 30), START)[-1][1]
    assert hearing.set_mode(Mode.LISTENING, taken=handed.early_id - 1) is None and not hearing.listening, (
        "the turn that ended is older than the utterance just handed on: that one is the next turn's"
    )
    hearing.set_mode(Mode.LISTENING, taken=handed.early_id)
    assert hearing.listening
    hearing.set_mode(Mode.OFF)
    hearing.set_mode(Mode.LISTENING, taken=0)
    assert hearing.listening, "after a reset nothing is on its way"


def test_a_turn_that_ended_without_a_reply_is_not_joined_to_the_next_speech() -> None:
    hearing = early_ears()
    hearing.set_mode(Mode.LISTENING)
    handed = feed(hearing, words_and_pause(15, 30), START)[-1][1]
    hearing.set_mode(Mode.LISTENING, taken=handed.early_id)  # no words in it, or no reply: listening
    later = feed(hearing, words_and_pause(10, 30), START + 45)
    assert not any(h.resumed for _, h in later)
    assert later[0][1].utterance is not None and len(later[0][1].utterance.samples) < 30 * CHUNK_SAMPLES
