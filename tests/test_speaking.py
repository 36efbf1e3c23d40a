"""The speaker synthesises the next sentences while one plays, and stops both at once when cancelled."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator

import numpy as np
import pytest
from realtime_sink import RealTimeSink

from machine.ports import FloatAudio, SpeechAudio
from machine.speak.speaker import Speaker

RATE = 16_000


class SlowStartSynthesizer:
    """Takes `first_s` for the first sentence (slower than real time) and `later_s` for the others
    (faster than real time); every sentence lasts `audio_s`."""

    sample_rate = RATE

    def __init__(self, audio_s: float, first_s: float, later_s: float) -> None:
        self.audio_s, self.first_s, self.later_s = audio_s, first_s, later_s
        self.calls: list[str] = []

    def rest(self) -> None:
        pass

    def synthesize(self, text: str) -> Iterator[SpeechAudio]:
        self.calls.append(text)
        time.sleep(self.first_s if len(self.calls) == 1 else self.later_s)
        yield SpeechAudio(np.zeros(int(self.audio_s * RATE), dtype=np.float32), RATE)


class EndlessReply:
    """A reply that could go on forever, like a model streaming sentences; records what was taken."""

    def __init__(self) -> None:
        self.taken = 0
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[str]:
        try:
            while True:
                self.taken += 1
                yield f"Sentence number {self.taken}."
        finally:
            self.closed.set()


class CancelDuringSecondSentence(RealTimeSink):
    """Sets `cancel` 0.1 s into the second sentence's playback."""

    def play(self, audio: FloatAudio, cancel: threading.Event) -> None:
        if len(self.plays) == 1:
            threading.Timer(0.1, cancel.set).start()
        super().play(audio, cancel)


def speak_in_thread(speaker: Speaker, sentences: Iterable[str], cancel: threading.Event) -> list[str]:
    result: list[list[str]] = []
    thread = threading.Thread(
        target=lambda: result.append(speaker.speak(sentences, cancel).sentences), daemon=True
    )
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "the speaker hung"
    return result[0]


@pytest.mark.slow  # plays 1.5 s in real time
def test_next_sentences_are_ready_when_the_previous_one_ends() -> None:
    """Synthesis of sentence n+1 (80 ms) overlaps the playback of sentence n (250 ms): no silence between.

    Synthesising each sentence only after the previous one played would leave ~80 ms gaps."""
    synthesizer = SlowStartSynthesizer(audio_s=0.25, first_s=0.5, later_s=0.08)
    sink = RealTimeSink()
    sentences = [f"Sentence {i}." for i in range(6)]
    played = speak_in_thread(Speaker(synthesizer, sink), iter(sentences), threading.Event())
    assert played == sentences
    assert len(sink.plays) == 6 and sink.interrupted == 0
    assert max(sink.gaps_s()) < 0.020, [round(gap * 1000, 1) for gap in sink.gaps_s()]


def test_cancel_mid_reply_stops_synthesis_and_playback() -> None:
    synthesizer = SlowStartSynthesizer(audio_s=0.5, first_s=0.01, later_s=0.01)
    sink = CancelDuringSecondSentence()
    reply = EndlessReply()
    played = speak_in_thread(Speaker(synthesizer, sink, ahead=2), iter(reply), threading.Event())
    synthesised, plays = len(synthesizer.calls), len(sink.plays)
    assert reply.closed.is_set(), "the sentence stream was closed: no more text is generated"
    assert played == ["Sentence number 1.", "Sentence number 2."]
    assert plays == 2 and sink.interrupted == 1, "the second sentence was cut, nothing played after it"
    assert sink.replies_ended == 1
    # only a bounded look-ahead was synthesised: the playing one, `ahead` queued and one in the worker
    assert synthesised <= plays + 2 + 1 and reply.taken <= synthesised + 1
    time.sleep(0.2)
    assert (len(synthesizer.calls), len(sink.plays)) == (synthesised, plays), "nothing after speak returned"
