"""Levels and endpointing on synthetic signals: dBFS, hysteresis, pre-roll, pruning, maximum length."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from machine.listen.endpointing import (
    Ended,
    Endpointer,
    EndpointEvent,
    NoiseFloor,
    Paused,
    Resumed,
)
from machine.ports import CHUNK_SAMPLES, SAMPLE_RATE, AudioChunk, FloatAudio, Utterance
from machine.settings import EndpointingSettings
from machine.shared.levels import SILENCE_DBFS, dbfs


class LoudnessVad:
    """A stand-in for silero: 'speech' is any chunk with an RMS above 0.01."""

    def __init__(self) -> None:
        self.resets = 0

    def probability(self, chunk: FloatAudio) -> float:
        return 0.9 if float(np.sqrt(np.mean(chunk**2))) > 0.01 else 0.05

    def reset(self) -> None:
        self.resets += 1


def tone(chunks: int, amplitude: float = 0.3) -> list[FloatAudio]:
    t = np.arange(chunks * CHUNK_SAMPLES) / SAMPLE_RATE
    wave = (amplitude * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    return list(wave.reshape(chunks, CHUNK_SAMPLES))


def silence(chunks: int) -> list[FloatAudio]:
    return [np.zeros(CHUNK_SAMPLES, dtype=np.float32) for _ in range(chunks)]


def events(endpointer: Endpointer, signal: list[FloatAudio]) -> list[tuple[int, EndpointEvent]]:
    """Push every chunk (chunk i 'arrives' at time i); returns (index, event) for each event."""
    out = []
    for index, samples in enumerate(signal):
        event = endpointer.push(AudioChunk(samples=samples, arrived_at=float(index)))
        if event is not None:
            out.append((index, event))
    return out


def run(endpointer: Endpointer, signal: list[FloatAudio]) -> list[tuple[int, Utterance]]:
    """(index, utterance) for each utterance ended."""
    return [(index, e.utterance) for index, e in events(endpointer, signal) if isinstance(e, Ended)]


SETTINGS = EndpointingSettings(start_chunks=3, end_silence_ms=500, pre_roll_ms=320, min_utterance_ms=200)


def test_dbfs_of_known_signals() -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    sine = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    assert dbfs(sine) == pytest.approx(-3.0103, abs=0.01)
    assert dbfs(0.1 * sine) == pytest.approx(-23.0103, abs=0.01)
    assert dbfs(np.ones(512, dtype=np.float32)) == pytest.approx(0.0)
    assert dbfs(np.zeros(512, dtype=np.float32)) == SILENCE_DBFS
    assert dbfs(np.zeros(0, dtype=np.float32)) == SILENCE_DBFS


def test_tone_burst_is_one_utterance_with_pre_roll_and_a_short_tail() -> None:
    endpointer = Endpointer(LoudnessVad(), SETTINGS)
    closed = run(endpointer, silence(20) + tone(20) + silence(30))
    assert len(closed) == 1
    index, utterance = closed[0]
    pre_roll, end_silence, tail = math.ceil(320 / 32), math.ceil(500 / 32), math.ceil(160 / 32)
    assert index == 20 + 20 + end_silence - 1, "ends after end_silence_ms of unvoiced chunks"
    assert utterance.endpoint_at - utterance.last_voiced_at == pytest.approx(end_silence * 0.032), (
        "the endpoint stage is measured in audio time, so it is right however fast the chunks arrive"
    )
    assert utterance.endpoint_at == float(index)
    assert len(utterance.samples) == (pre_roll + 20 + tail) * CHUNK_SAMPLES
    assert not np.any(utterance.samples[: pre_roll * CHUNK_SAMPLES]), "the pre-roll is the silence before"
    assert not utterance.truncated


def test_start_needs_consecutive_voiced_chunks() -> None:
    endpointer = Endpointer(LoudnessVad(), SETTINGS)
    blips = (tone(2) + silence(3)) * 10
    assert run(endpointer, blips) == []
    assert not endpointer.in_speech


def test_short_burst_is_dropped_as_noise_and_said_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="machine.listen.endpointing")
    endpointer = Endpointer(LoudnessVad(), EndpointingSettings(start_chunks=3, min_utterance_ms=300))
    assert run(endpointer, silence(5) + tone(5) + silence(30)) == []  # 160 ms of 'speech'
    assert endpointer.too_short == 1, "counted"
    assert "160 ms of speech, shorter than min_utterance_ms (320): not a turn (1 so far)" in caplog.text
    assert len(run(endpointer, silence(5) + tone(12) + silence(30))) == 1  # 384 ms
    assert endpointer.too_short == 1


def test_the_silent_rest_of_a_cut_utterance_is_not_counted_as_too_short() -> None:
    endpointer = Endpointer(LoudnessVad(), EndpointingSettings(max_utterance_s=2.0))  # 63 chunks
    closed = run(endpointer, silence(5) + tone(55) + silence(40))  # the maximum comes in the silence after
    assert len(closed) == 1
    assert endpointer.too_short == 0, "the rest after the cut held no speech"


def test_quiet_chunks_are_silence_whatever_the_vad_says() -> None:
    endpointer = Endpointer(LoudnessVad(), EndpointingSettings(min_level_dbfs=-20.0))
    assert run(endpointer, tone(40, amplitude=0.05)) == []  # about -29 dBFS


def test_silence_is_pruned_as_it_arrives() -> None:
    endpointer = Endpointer(LoudnessVad(), SETTINGS)
    run(endpointer, silence(2000))
    assert endpointer.held_chunks == math.ceil(320 / 32) + SETTINGS.start_chunks


def test_long_speech_is_cut_at_its_last_pause_and_the_rest_stays_open() -> None:
    """At the maximum length the utterance ends in the speaker's last pause, not mid-word; the words after
    the pause stay open and end as the next utterance, so nothing is lost."""
    endpointer = Endpointer(LoudnessVad(), EndpointingSettings(max_utterance_s=3.0))  # 94 chunks
    first_words, second_words = tone(50, amplitude=0.3), tone(60, amplitude=0.4)
    closed = run(endpointer, silence(10) + first_words + silence(6) + second_words + silence(30))
    assert [u.truncated for _, u in closed] == [True, False]
    cut, rest = closed[0][1].samples, closed[1][1].samples
    assert np.count_nonzero(np.isclose(np.abs(cut).max(), 0.3)) == 1 and np.abs(cut).max() < 0.35, (
        "the first piece ends in the pause: none of the second words are in it"
    )
    loud_second = np.count_nonzero(np.abs(rest) > 0.35)
    assert loud_second == np.count_nonzero(np.abs(np.concatenate(second_words)) > 0.35), (
        "every sample of the words after the pause is in the next utterance"
    )


def test_speech_without_a_pause_is_cut_at_the_maximum_and_nothing_is_dropped() -> None:
    endpointer = Endpointer(LoudnessVad(), EndpointingSettings(max_utterance_s=2.0))
    speech = tone(200)
    closed = run(endpointer, speech + silence(30))
    max_chunks = math.ceil(2000 / 32)
    assert len(closed) >= 3 and all(u.truncated for _, u in closed[:-1]) and not closed[-1][1].truncated
    assert all(len(u.samples) <= max_chunks * CHUNK_SAMPLES for _, u in closed)
    voiced = sum(np.count_nonzero(u.samples) for _, u in closed)
    assert voiced == np.count_nonzero(np.concatenate(speech)), "every voiced sample reaches an utterance"


def test_masked_chunks_are_silence_but_their_audio_is_kept_inside_speech() -> None:
    endpointer = Endpointer(LoudnessVad(), SETTINGS)
    before = endpointer.noise_floor.db
    for samples in tone(30):
        assert endpointer.push(AudioChunk(samples, 0.0), masked=True) is None
    assert not endpointer.in_speech and endpointer.noise_floor.db == before, (
        "echo is neither speech nor noise"
    )
    closed = run(endpointer, tone(10) + [tone(1)[0]] * 3 + silence(30))
    assert len(closed) == 1


def test_pauses_shorter_than_the_end_silence_do_not_split_an_utterance() -> None:
    endpointer = Endpointer(LoudnessVad(), SETTINGS)
    closed = run(endpointer, tone(10) + silence(10) + tone(10) + silence(30))
    assert len(closed) == 1


def test_flush_and_reset() -> None:
    vad = LoudnessVad()
    endpointer = Endpointer(vad, SETTINGS)
    run(endpointer, tone(10))
    assert endpointer.in_speech
    ended = endpointer.flush(now=99.0)
    assert ended is not None and ended.utterance.endpoint_at == 99.0
    assert not endpointer.in_speech and endpointer.held_chunks == 0 and vad.resets >= 1


def test_wrong_chunk_size_is_refused() -> None:
    endpointer = Endpointer(LoudnessVad(), SETTINGS)
    with pytest.raises(ValueError, match="chunks of 512 samples"):
        endpointer.push(AudioChunk(np.zeros(100, dtype=np.float32), 0.0))


def test_noise_floor_falls_at_once_and_rises_slowly() -> None:
    floor = NoiseFloor(rise_db_per_s=3.0, initial_db=-65.0)
    assert floor.update(-80.0) == -80.0
    for _ in range(31):  # about one second of -30 dBFS noise
        floor.update(-30.0)
    assert floor.db == pytest.approx(-80.0 + 31 * 3.0 * 0.032)


def test_steady_noise_above_the_floor_stops_counting_as_speech() -> None:
    """A hum that the VAD mistakes for speech starts an utterance while the floor is low; once the floor has
    risen to it, the same hum is background and no longer voiced."""
    endpointer = Endpointer(LoudnessVad(), EndpointingSettings(noise_floor_rise_db_per_s=20.0))
    hum = tone(1, amplitude=0.05)[0]
    seen = [endpointer.is_voiced(AudioChunk(hum, 0.0)) for _ in range(200)]
    assert seen[0] and not seen[-1]
    assert endpointer.noise_floor.db == pytest.approx(dbfs(hum), abs=0.5)
    assert endpointer.is_voiced(AudioChunk(tone(1, amplitude=0.5)[0], 0.0)), "louder speech still counts"
    assert endpointer.heard_sound


PAUSE = math.ceil(EndpointingSettings().pause_ms / 32)
"""Chunks of silence in the default `pause_ms`."""


def test_a_pause_hands_the_speech_on_early_and_the_end_confirms_the_same_speech() -> None:
    endpointer = Endpointer(LoudnessVad(), SETTINGS)
    seen = events(endpointer, silence(5) + tone(20) + silence(30))
    assert [type(e) for _, e in seen] == [Paused, Ended]
    (paused_at, paused), (ended_at, ended) = seen
    assert isinstance(paused, Paused) and isinstance(ended, Ended)
    assert paused_at == 5 + 20 + PAUSE - 1 and ended_at == 5 + 20 + math.ceil(500 / 32) - 1
    assert ended.after_pause
    assert np.array_equal(paused.utterance.samples, ended.utterance.samples), (
        "the early utterance is what the final one holds: its transcript stands"
    )


def test_speaking_on_after_a_pause_resumes_and_the_words_stay_one_utterance() -> None:
    endpointer = Endpointer(LoudnessVad(), SETTINGS)
    first, second = tone(10, amplitude=0.2), tone(10, amplitude=0.4)
    seen = events(endpointer, first + silence(12) + second + silence(30))
    assert [type(e) for _, e in seen] == [Paused, Resumed, Paused, Ended]
    assert seen[1][0] == 10 + 12 + SETTINGS.start_chunks - 1, "resumed after start_chunks voiced chunks"
    final = seen[-1][1]
    assert isinstance(final, Ended) and final.after_pause
    audio = final.utterance.samples
    assert np.count_nonzero(np.isclose(np.abs(audio), 0.2, atol=0.01)) > 0, "the words before the pause"
    assert np.abs(audio).max() > 0.35, "and the words after it"


def test_a_click_after_a_pause_does_not_resume() -> None:
    endpointer = Endpointer(LoudnessVad(), SETTINGS)
    seen = events(endpointer, tone(10) + silence(10) + tone(1) + silence(30))
    assert [type(e) for _, e in seen] == [Paused, Ended]


def test_the_turn_model_judges_at_the_pause_and_a_finished_turn_ends_after_the_gap() -> None:
    heard: list[int] = []

    def finished(audio: FloatAudio) -> float:
        heard.append(len(audio))
        return 0.7  # finished, not sure

    endpointer = Endpointer(LoudnessVad(), SETTINGS, turn_end=finished)
    seen = events(endpointer, silence(15) + tone(20) + silence(60))
    paused_at = 15 + 20 + PAUSE - 1
    gap = math.ceil(SETTINGS.end_gap_ms / 32)
    assert [(i, type(e)) for i, e in seen] == [(paused_at, Paused), (15 + 20 + gap - 1, Ended)], (
        "handed on at the pause, judged with the next chunk, ended once end_gap_ms of silence has passed"
    )
    assert isinstance(seen[1][1], Ended) and seen[1][1].after_pause
    pre_roll = math.ceil(320 / 32)
    assert heard == [(pre_roll + 20 + PAUSE + 1) * CHUNK_SAMPLES], "the model hears the speech and the pause"
    at_once = Endpointer(
        LoudnessVad(), EndpointingSettings(end_gap_ms=(PAUSE + 1) * 32, sure_gap_ms=None), turn_end=finished
    )
    seen = events(at_once, silence(15) + tone(20) + silence(60))
    assert [(i, type(e)) for i, e in seen] == [(paused_at, Paused), (paused_at + 1, Ended)], (
        "a gap no longer than the verdict's chunk ends the turn with the verdict"
    )


def test_a_speaker_who_goes_on_within_the_gap_keeps_their_turn_though_the_model_called_it_finished() -> None:
    """Mid-sentence hesitations ("My favourite food is probably ... spicy noodles") that the turn-end model
    calls surely finished: going on within sure_gap_ms resumes the turn, so no reply is given to half a
    sentence."""
    endpointer = Endpointer(LoudnessVad(), SETTINGS, turn_end=lambda audio: 1.0)
    assert SETTINGS.sure_gap_ms is not None
    hesitation = math.ceil(SETTINGS.sure_gap_ms / 32) - SETTINGS.start_chunks - 1
    seen = events(endpointer, tone(20) + silence(hesitation) + tone(20) + silence(60))
    assert [type(e) for _, e in seen] == [Paused, Resumed, Paused, Ended]
    final = seen[-1][1]
    assert isinstance(final, Ended) and final.utterance.duration_s > 40 * 0.032, "both halves, one turn"


def test_an_unfinished_turn_ends_after_the_longer_silence() -> None:
    settings = EndpointingSettings(max_silence_ms=1500)
    endpointer = Endpointer(LoudnessVad(), settings, turn_end=lambda audio: 0.2)
    seen = events(endpointer, tone(20) + silence(80))
    assert [(i, type(e)) for i, e in seen] == [
        (20 + PAUSE - 1, Paused),
        (20 + math.ceil(1500 / 32) - 1, Ended),
    ]


def test_a_failing_turn_model_falls_back_to_the_silence(caplog: pytest.LogCaptureFixture) -> None:
    def broken(audio: FloatAudio) -> float:
        raise RuntimeError("onnx says no")

    endpointer = Endpointer(LoudnessVad(), EndpointingSettings(max_silence_ms=1500), turn_end=broken)
    seen = events(endpointer, tone(20) + silence(80))
    assert [type(e) for _, e in seen] == [Paused, Ended]
    assert "turn-end model failed" in caplog.text


@pytest.mark.parametrize(
    ("probability", "ends_after_ms"),
    [(0.95, 320), (0.9, 320), (0.89, 900), (0.5, 900), (0.49, 1500), (0.05, 1500)],
)
def test_the_silence_that_ends_a_turn_follows_how_sure_the_model_is(
    probability: float, ends_after_ms: int
) -> None:
    """Sure (at least sure_threshold): sure_gap_ms; finished (at least turn_threshold): end_gap_ms;
    unfinished: max_silence_ms."""
    graded = EndpointingSettings(
        turn_threshold=0.5, sure_threshold=0.9, sure_gap_ms=320, end_gap_ms=900, max_silence_ms=1500
    )
    endpointer = Endpointer(LoudnessVad(), graded, turn_end=lambda audio: probability)
    seen = events(endpointer, tone(20) + silence(80))
    assert [(i, type(e)) for i, e in seen] == [
        (20 + PAUSE - 1, Paused),
        (20 + math.ceil(ends_after_ms / 32) - 1, Ended),
    ]


def test_pause_must_be_shorter_than_the_end_of_a_turn() -> None:
    with pytest.raises(ValueError, match=r"pause_ms .* must be shorter than max_silence_ms"):
        EndpointingSettings(pause_ms=1500, max_silence_ms=1500)
    with pytest.raises(ValueError, match=r"end_gap_ms \(2000\) must be longer than pause_ms"):
        EndpointingSettings(end_gap_ms=2000, max_silence_ms=1500)
    with pytest.raises(ValueError, match=r"end_gap_ms \(100\) must be longer than pause_ms"):
        EndpointingSettings(end_gap_ms=100)
    with pytest.raises(ValueError, match=r"sure_gap_ms \(1000\) must be longer than pause_ms"):
        EndpointingSettings(sure_gap_ms=1000, end_gap_ms=900)
    with pytest.raises(ValueError, match=r"sure_threshold \(0.4\) at least turn_threshold \(0.5\)"):
        EndpointingSettings(sure_threshold=0.4)
    with pytest.raises(ValueError, match="must be shorter than end_silence_ms"):
        EndpointingSettings(turn_model="silence", pause_ms=600, end_silence_ms=500)


def louder(before: FloatAudio, after: FloatAudio) -> bool:
    """Stands in for the voice check: the two sides are different speakers when their levels differ."""
    level = lambda audio: float(np.sqrt(np.mean(np.square(audio[np.abs(audio) > 0.01])) or 0.0))  # noqa: E731
    return abs(level(before) - level(after)) > 0.05


def test_a_quick_answer_in_another_voice_ends_the_first_speakers_utterance() -> None:
    """Two speakers 96 ms apart (no pause the endpointer would call one): the first one's speech is handed
    on as soon as a second of the other voice is heard, the other's stays open and ends on its own. The
    point taken a second into the first speaker's speech (without a gap) gives way to the gap, so the
    second it is judged on does not straddle the change."""
    checks: list[tuple[int, int]] = []

    def changed(before: FloatAudio, after: FloatAudio) -> bool:
        checks.append((len(before), len(after)))
        return louder(before, after)

    endpointer = Endpointer(LoudnessVad(), SETTINGS, voice_changed=changed)
    seen = events(endpointer, tone(40, 0.3) + silence(3) + tone(50, 0.1) + silence(30))
    ended = [(i, e) for i, e in seen if isinstance(e, Ended)]
    assert len(ended) == 2, seen
    (first_at, first), (_, second) = ended
    assert first_at == 40 + 3 + math.ceil(1000 / 32) - 2, "judged once a second of the new voice is heard"
    assert abs(first.utterance.samples).max() > 0.2 and abs(second.utterance.samples).max() < 0.15
    assert second.utterance.duration_s >= 50 * 0.032, "the second speaker's words are all theirs"
    window = math.ceil(1000 / 32)
    assert checks[0][1] == (window - 1) * CHUNK_SAMPLES, "only voiced chunks compared: not the gap's"


def test_a_side_that_is_mostly_silence_is_not_compared() -> None:
    """A point near the end of the speech: the second after it is mostly the silence that ends the turn,
    which sounds like no one; it is not judged (it would end every turn at its last gap)."""
    checks: list[int] = []

    def changed(before: FloatAudio, after: FloatAudio) -> bool:
        checks.append(len(after))
        return True

    slow_to_pause = EndpointingSettings(turn_model="silence", pause_ms=1200, end_silence_ms=1500)
    endpointer = Endpointer(LoudnessVad(), slow_to_pause, voice_changed=changed)
    seen = events(endpointer, tone(40) + silence(3) + tone(10) + silence(60))
    assert checks == [] and [type(e) for _, e in seen] == [Paused, Ended]


def test_the_same_voice_after_a_gap_stays_one_utterance() -> None:
    endpointer = Endpointer(LoudnessVad(), SETTINGS, voice_changed=louder)
    seen = events(endpointer, tone(40) + silence(3) + tone(50) + silence(30))
    assert [type(e) for _, e in seen] == [Paused, Ended]


def test_a_voice_check_that_fails_leaves_the_utterance_whole(caplog: pytest.LogCaptureFixture) -> None:
    def broken(before: FloatAudio, after: FloatAudio) -> bool:
        raise RuntimeError("encoder says no")

    endpointer = Endpointer(LoudnessVad(), SETTINGS, voice_changed=broken)
    seen = events(endpointer, tone(40, 0.3) + silence(3) + tone(50, 0.1) + silence(30))
    assert [type(e) for _, e in seen] == [Paused, Ended]
    assert "telling speakers apart failed" in caplog.text


def test_an_answer_after_a_pause_is_judged_from_the_middle_of_the_pause() -> None:
    """The gap between the speakers is long enough to be a pause (and short enough to go on): the pause is
    where the other voice starts, so the first speaker's utterance ends there."""
    endpointer = Endpointer(LoudnessVad(), SETTINGS, voice_changed=louder)
    seen = events(endpointer, tone(40, 0.3) + silence(8) + tone(50, 0.1) + silence(30))
    assert [type(e) for _, e in seen] == [Paused, Resumed, Ended, Paused, Ended]
    first, second = (e.utterance for _, e in seen if isinstance(e, Ended))
    assert abs(first.samples).max() > 0.2 and abs(second.samples).max() < 0.15
