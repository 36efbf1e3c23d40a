"""The runtime on fakes of our own ports: scripted timelines, then the exact state sequence and metrics."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from chat_fakes import GatedChatModel, RecentWindow, ScriptedChatModel, make_thinker
from test_endpointing import LoudnessVad, silence, tone

from machine import runtime as runtime_module
from machine.crowd.attribution import Crowd
from machine.crowd.policy import ReplyPolicy
from machine.crowd.speaker_change import SpeakerChange
from machine.crowd.speakers import SpeakerTracker
from machine.events import Start
from machine.listen.endpointing import Endpointer, VoiceChanged
from machine.listen.hearing import Hearing
from machine.ports import (
    CHUNK_SAMPLES,
    AudioChunk,
    AudioSource,
    Captions,
    ChatMessage,
    Deliver,
    FloatAudio,
    PlaybackReport,
    ReplyStream,
    Sampling,
    SpeechAudio,
    Transcript,
    WaitForTurn,
)
from machine.process.stop_signals import StopSignals
from machine.runtime import Runtime
from machine.settings import EndpointingSettings, ReplyPolicySettings
from machine.speak.speaker import Speaker
from machine.turn_metrics import TurnRecord

FULL_TURN = ["idle", "listening", "transcribing", "thinking", "speaking", "listening"]


class ScriptedTranscriber:
    def __init__(self, texts: list[str | Exception]) -> None:
        self.texts = list(texts)
        self.heard: list[int] = []

    def transcribe(self, samples: FloatAudio) -> Transcript:
        self.heard.append(len(samples))
        text = self.texts.pop(0)
        if isinstance(text, Exception):
            raise text
        return Transcript(text)


class ToneSynthesizer:
    sample_rate = 16_000

    def __init__(self) -> None:
        self.spoken: list[str] = []
        self.rests = 0

    def rest(self) -> None:
        self.rests += 1

    def synthesize(self, text: str) -> Iterator[SpeechAudio]:
        self.spoken.append(text)
        yield SpeechAudio(np.full(1600, 0.1, dtype=np.float32), self.sample_rate)


class MemorySink:
    def __init__(self, on_play: Callable[[], None] = lambda: None, seconds_per_play: float = 0.0) -> None:
        self.replies: list[list[FloatAudio]] = []
        self.on_play = on_play
        self.seconds_per_play = seconds_per_play
        self.cancelled = False

    def begin_reply(self, sample_rate: int) -> None:
        self.replies.append([])

    def play(self, audio: FloatAudio, cancel: threading.Event) -> None:
        self.replies[-1].append(audio)
        self.on_play()
        if self.seconds_per_play and cancel.wait(self.seconds_per_play):
            self.cancelled = True

    def end_reply(self, cancel: threading.Event) -> PlaybackReport:
        seconds = sum(len(part) for part in self.replies[-1]) / 16_000
        return PlaybackReport(seconds, seconds, 0)


class ScriptedSource:
    """Says each utterance (a tone of n chunks) after the bot is listening, then trailing silence."""

    def __init__(self, utterances: list[int]) -> None:
        self.utterances = utterances

    def run(
        self,
        deliver: Callable[[AudioChunk], None],
        wait_for_turn: Callable[[float], bool],
        stopping: threading.Event,
    ) -> None:
        for chunks in self.utterances:
            assert wait_for_turn(10), "the bot never came back to listening"
            for samples in silence(5) + tone(chunks) + silence(25):
                deliver(AudioChunk(samples, time.monotonic()))
        assert wait_for_turn(10) or stopping.is_set()


def make_runtime(
    transcripts: list[str | Exception],
    replies: list[str],
    sink: MemorySink | None = None,
    chat: ScriptedChatModel | None = None,
    captions: Captions | None = None,
    crowd: Crowd | None = None,
    transcriber: ScriptedTranscriber | None = None,
    speculate: bool = False,
    retract_ms: int = 0,
    voice_changed: VoiceChanged | None = None,
) -> tuple[Runtime, ScriptedTranscriber, ScriptedChatModel, ToneSynthesizer, MemorySink, RecentWindow]:
    """A runtime on scripted parts; `transcriber` replaces the one made from `transcripts`, `speculate`
    hands speech on early, at a pause, and `retract_ms` lets a speaker who goes on retract the reply."""
    transcriber = transcriber or ScriptedTranscriber(transcripts)
    chat = chat or ScriptedChatModel(replies)
    synthesizer = ToneSynthesizer()
    sink = sink or MemorySink()
    memory = RecentWindow(4)
    thinker = make_thinker(chat, memory, max_sentences=2, first_clause_words=0)
    ears = Hearing(
        Endpointer(LoudnessVad(), EndpointingSettings(), voice_changed=voice_changed),
        None,
        None,
        max_held_s=60,
        speculate=speculate,
        retract_ms=retract_ms,
    )
    runtime = Runtime(
        ears,
        transcriber,
        thinker,
        Speaker(synthesizer, sink),
        on_turn=lambda record: None,
        captions=captions,
        crowd=crowd,
    )
    return runtime, transcriber, chat, synthesizer, sink, memory


def run_with_timeout(runtime: Runtime, source: AudioSource) -> list[TurnRecord]:
    result: list[list[TurnRecord]] = []
    thread = threading.Thread(target=lambda: result.append(runtime.run(source)), daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the runtime hung"
    return result[0]


def test_two_turns_follow_the_table_and_record_ordered_timestamps() -> None:
    runtime, _, chat, synthesizer, sink, memory = make_runtime(
        ["hello there", "and you?"], ["Hi! Nice to meet you. Extra words here.", "I am fine."]
    )
    records = run_with_timeout(runtime, ScriptedSource([20, 15]))
    assert [r.outcome for r in records] == ["replied", "replied"]
    assert records[0].states == FULL_TURN
    assert records[1].states == FULL_TURN[1:]
    assert runtime.machine.current.value == "idle"
    assert records[0].reply == ["Hi!", "Nice to meet you."], "the sentence limit holds"
    assert synthesizer.spoken == ["Hi!", "Nice to meet you.", "I am fine."]
    assert len(sink.replies) == 2
    for record in records:
        stamps = [
            record.last_voiced,
            record.endpoint,
            record.transcript_ready,
            record.first_token,
            record.first_sentence,
            record.first_audio,
            record.done,
        ]
        assert all(s is not None for s in stamps)
        assert stamps == sorted(stamps), "timestamps follow the pipeline"  # type: ignore[type-var]
    # the second prompt carries the first exchange: what the user said, as a note (`history: notes`)
    system, *rest = chat.prompts[1]
    assert system.content.endswith("\n- hello there") and [m.content for m in rest] == ["and you?"]
    assert memory.context("x").window[-1].answer == "I am fine."
    assert [r.prompt_tokens for r in records] == [chat.count_tokens(p) for p in chat.prompts], (
        "each record has the size of its prompt"
    )
    assert records[1].prompt_tokens > records[0].prompt_tokens


def test_the_voice_rests_after_each_turn_and_a_failing_rest_ends_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime, _, _, synthesizer, sink, _ = make_runtime(["hello there", "and you?"], ["Hi!", "Fine."])

    def tired() -> None:
        synthesizer.rests += 1
        raise RuntimeError("arena")

    synthesizer.rest = tired  # type: ignore[method-assign]
    records = run_with_timeout(runtime, ScriptedSource([20, 15]))
    assert [r.outcome for r in records] == ["replied", "replied"]
    assert len(sink.replies) == 2
    assert synthesizer.rests == 2, "the voice gives back its memory once a turn is over"
    assert "could not give back its memory" in caplog.text


def test_noise_only_transcript_goes_back_to_listening() -> None:
    runtime, _, chat, synthesizer, _, _ = make_runtime([" . ", "hello"], ["Hello!"])
    records = run_with_timeout(runtime, ScriptedSource([10, 10]))
    assert records[0].outcome == "no_words"
    assert records[0].states == ["idle", "listening", "transcribing", "listening"]
    assert records[1].outcome == "replied"
    assert len(chat.prompts) == 1 and synthesizer.spoken == ["Hello!"]


class TwoVoices:
    """Voice embeddings of two players, in the order they speak."""

    def __init__(self, order: list[int]) -> None:
        self._order = iter(order)

    def embed(self, speech: FloatAudio) -> np.ndarray:
        vector = np.zeros(8, dtype=np.float32)
        vector[next(self._order)] = 1.0
        return vector


class EveryVoice:
    """One voice for everything; notes each embedding asked for."""

    def __init__(self) -> None:
        self.embedded: list[int] = []

    def embed(self, speech: FloatAudio) -> np.ndarray:
        self.embedded.append(len(speech))
        return np.eye(1, 8, dtype=np.float32)[0]


class LevelVoices:
    """Two voices told apart by loudness: a loud speaker and a quiet one."""

    def embed(self, speech: FloatAudio) -> np.ndarray:
        return np.eye(1, 8, 0 if float(np.abs(speech).max()) > 0.2 else 1, dtype=np.float32)[0]


def test_a_change_of_speaker_ends_the_turn_and_each_part_is_answered_as_its_speakers() -> None:
    """Two players, the second answering the first after a quarter of a second: two turns, each with its
    own speaker and reply, not one turn of both."""
    voices = LevelVoices()
    crowd = Crowd(voices, SpeakerTracker(0.72), ReplyPolicy(ReplyPolicySettings(), "Testy"))
    runtime, transcriber, _, _, sink, memory = make_runtime(
        ["I love this world", "me too"],
        ["Same here.", "Great."],
        crowd=crowd,
        voice_changed=SpeakerChange(voices, 0.6).changed,
    )
    source = Say((None, silence(5) + tone(40, 0.3) + silence(8) + tone(50, 0.1) + silence(40)))
    records = run_with_timeout(runtime, source)
    assert [(r.transcript, r.speaker, r.outcome) for r in records] == [
        ("I love this world", "speaker 1", "replied"),
        ("me too", "speaker 2", "replied"),
    ]
    assert transcriber.heard[0] < 50 * CHUNK_SAMPLES <= transcriber.heard[1], "each heard only their own"
    assert len(sink.replies) == 2 and [e.question for e in memory.exchanges] == [
        "I love this world",
        "me too",
    ]


def test_cross_talk_is_not_answered_and_each_memory_keeps_its_speaker() -> None:
    """`addressed`: the bot answers its name and the same speaker's follow-up; another player talking to
    the first gets no reply (outcome not_addressed) and the follow-up window closes."""
    crowd = Crowd(
        TwoVoices([0, 0, 1, 0]),
        SpeakerTracker(0.72, "Celeste"),
        ReplyPolicy(ReplyPolicySettings(policy="addressed"), "Celeste"),
    )
    runtime, _, chat, _, _, memory = make_runtime(
        ["Celeste, I'm Robin.", "And you?", "Robin, come here.", "Sure."],
        ["Hi Robin!", "I am fine."],
        crowd=crowd,
    )
    records = run_with_timeout(runtime, ScriptedSource([10, 10, 10, 10]))
    assert [(r.speaker, r.outcome) for r in records] == [
        ("Robin", "replied"),
        ("Robin", "replied"),
        ("speaker 2", "not_addressed"),
        ("Robin", "not_addressed"),
    ]
    assert len(chat.prompts) == 2
    assert [(e.question, e.speaker) for e in memory.context("x").window] == [
        ("Celeste, I'm Robin.", "Robin"),
        ("And you?", "Robin"),
    ]


@pytest.mark.parametrize("reply", ["", "(laughs) 😊 :)"])
def test_no_reply_is_not_spoken(reply: str) -> None:
    """Three empty replies are three strikes: the turn is given up in silence, and the record says so."""
    runtime, _, _, synthesizer, sink, memory = make_runtime(["hello"], [reply] * 3)
    records = run_with_timeout(runtime, ScriptedSource([10]))
    assert records[0].outcome == "gave_up"
    assert records[0].strikes == ["format:empty"] * 3
    assert records[0].states == ["idle", "listening", "transcribing", "thinking", "listening"]
    assert synthesizer.spoken == [] and sink.replies == []
    assert memory.context("x").window == ()


def test_a_content_strike_mid_reply_silences_playback_and_is_not_remembered() -> None:
    playing = threading.Event()
    bad_after_first_sentence = GatedChatModel(
        ["Nice ", "to ", "see ", "you. "],
        playing,
        ["Visit ", "www.spam.example ", "today."],
        waiting_for="the first sentence never played",
    )
    sink = MemorySink(on_play=playing.set, seconds_per_play=5.0)
    runtime, _, _, synthesizer, sink, memory = make_runtime(["hello"], [], sink, bad_after_first_sentence)
    records = run_with_timeout(runtime, ScriptedSource([10]))
    assert records[0].outcome == "cut" and records[0].strikes[0].startswith("content:pattern")
    assert synthesizer.spoken == ["Nice to see you."] and sink.cancelled, "playback was cut, not played out"
    assert memory.exchanges == [], "a reply cut for its content is not remembered"
    assert records[0].states == FULL_TURN


class RecordingCaptions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def thinking(self) -> None:
        self.calls.append(("thinking",))

    def saying(self, sentence: str, duration_s: float) -> None:
        self.calls.append(("saying", sentence, f"{duration_s:.1f}"))

    def idle(self) -> None:
        self.calls.append(("idle",))

    def close(self) -> None:
        self.calls.append(("close",))


def test_captions_follow_the_turn() -> None:
    """Typing on while thinking, each sentence as it starts playing (with its duration), off after."""
    captions = RecordingCaptions()
    runtime, *_ = make_runtime(["hello"], ["Hi! Nice to meet you."], captions=captions)
    run_with_timeout(runtime, ScriptedSource([10]))
    assert captions.calls == [
        ("idle",),  # the first listening
        ("thinking",),
        ("saying", "Hi!", "0.1"),
        ("saying", "Nice to meet you.", "0.1"),
        ("idle",),  # listening again
        ("idle",),  # stopped
        ("close",),
    ]


def test_a_failing_stage_resets_the_turn_and_the_runtime_goes_on() -> None:
    runtime, _, _, synthesizer, _, _ = make_runtime([RuntimeError("boom"), "hello"], ["Hi there."])
    records = run_with_timeout(runtime, ScriptedSource([10, 10]))
    assert records[0].outcome == "failed"
    assert records[0].states == ["idle", "listening", "transcribing", "reset", "idle"]
    assert records[1].outcome == "replied"
    assert records[1].states == ["idle", "listening", "transcribing", "thinking", "speaking", "listening"]
    assert synthesizer.spoken == ["Hi there."]


def test_reset_while_speaking_stops_playback_and_generation() -> None:
    holder: list[Runtime] = []
    sink = MemorySink(on_play=lambda: holder[0].reset(), seconds_per_play=5.0)  # noqa: PLW0108 (late binding)
    runtime, _, chat, _, _, memory = make_runtime(["hello"], ["One. Two. Three. Four. Five."], sink)
    holder.append(runtime)
    records = run_with_timeout(runtime, ScriptedSource([10]))
    assert records[0].outcome == "reset"
    assert records[0].states == ["idle", "listening", "transcribing", "thinking", "speaking", "reset", "idle"]
    assert sink.cancelled, "playback was cut, not played to the end"
    assert chat.closed.wait(5) and chat.pieces_generated < 5, "generation stopped with the reply"
    assert memory.context("x").window == (), "an interrupted reply is not remembered"


def test_source_failure_is_raised_after_a_clean_stop() -> None:
    class BrokenSource:
        def run(self, deliver: object, wait_for_turn: object, stopping: threading.Event) -> None:
            raise OSError("device vanished")

    runtime, *_ = make_runtime([], [])
    with pytest.raises(OSError, match="device vanished"):
        runtime.run(BrokenSource())
    assert runtime.machine.current.value == "idle"


def test_stop_during_a_turn_abandons_it_and_ends_in_idle() -> None:
    holder: list[Runtime] = []
    sink = MemorySink(on_play=lambda: holder[0].stop(), seconds_per_play=5.0)  # noqa: PLW0108 (late binding)
    runtime, *_ = make_runtime(["hello"], ["One. Two. Three."], sink)
    holder.append(runtime)
    records = run_with_timeout(runtime, ScriptedSource([10]))
    assert records[0].outcome == "reset" and sink.cancelled
    assert runtime.machine.current.value == "idle"
    assert not runtime.machine.refused


class Say:
    """A source that delivers each part at once, without waiting for the bot, once the part's condition
    holds (None: at once)."""

    def __init__(self, *parts: tuple[Callable[[], bool] | None, list[FloatAudio]]) -> None:
        self.parts = parts

    def run(
        self,
        deliver: Callable[[AudioChunk], None],
        wait_for_turn: Callable[[float], bool],
        stopping: threading.Event,
    ) -> None:
        assert wait_for_turn(10)
        for ready, chunks in self.parts:
            deadline = time.monotonic() + 10
            while ready is not None and not ready():
                assert time.monotonic() < deadline, "the bot never got there"
                time.sleep(0.005)
            for samples in chunks:
                deliver(AudioChunk(samples, time.monotonic()))
        assert wait_for_turn(20)


def said(after: threading.Event | None, chunks: int) -> tuple[Callable[[], bool] | None, list[FloatAudio]]:
    """An utterance of `chunks` tone chunks between silences, said once `after` is set (None: at once)."""
    return (after.is_set if after is not None else None, silence(5) + tone(chunks) + silence(25))


def in_state(runtime: Runtime, state: str) -> Callable[[], bool]:
    """Whether the runtime's state machine is in `state`."""
    return lambda: runtime.machine.current.value == state


def runtime_with(
    hearing: Hearing,
    transcriber: ScriptedTranscriber,
    replies: list[str],
    sink: MemorySink,
    memory: RecentWindow | None = None,
    on_turn: Callable[[TurnRecord], None] = lambda record: None,
) -> Runtime:
    thinker = make_thinker(ScriptedChatModel(replies), memory or RecentWindow(4), max_sentences=2)
    return Runtime(hearing, transcriber, thinker, Speaker(ToneSynthesizer(), sink), on_turn=on_turn)


def hearing(barge_in_ms: int | None = None) -> Hearing:
    return Hearing(Endpointer(LoudnessVad(), EndpointingSettings()), None, barge_in_ms, max_held_s=60)


def test_speech_heard_while_the_bot_is_busy_is_answered_next() -> None:
    """A user who goes on talking while the bot transcribes is not dropped: it is the next turn."""
    ears = hearing()

    class WaitsForTheNextWords(ScriptedTranscriber):
        def transcribe(self, samples: FloatAudio) -> Transcript:
            if not self.heard:
                deadline = time.monotonic() + 10
                while ears.held_s == 0 and time.monotonic() < deadline:
                    time.sleep(0.01)  # a slow model: the second utterance arrives meanwhile
            return super().transcribe(samples)

    transcriber = WaitsForTheNextWords(["first", "second"])
    runtime = runtime_with(ears, transcriber, ["One.", "Two."], MemorySink())
    records = run_with_timeout(runtime, Say(said(None, 15), said(None, 20)))
    assert [(r.transcript, r.outcome) for r in records] == [("first", "replied"), ("second", "replied")]
    assert transcriber.heard[1] >= 20 * CHUNK_SAMPLES, "the held utterance is all there"


def test_a_user_who_talks_over_the_bot_stops_it_and_is_answered() -> None:
    playing = threading.Event()

    def on_play() -> None:
        if playing.is_set():
            sink.seconds_per_play = 0.0  # the second reply plays at once
        playing.set()

    sink = MemorySink(on_play=on_play, seconds_per_play=5.0)
    transcriber = ScriptedTranscriber(["tell me a story", "wait, stop"])
    runtime = runtime_with(
        hearing(barge_in_ms=256), transcriber, ["Once upon a time. There was.", "Yes?"], sink
    )
    records = run_with_timeout(runtime, Say(said(None, 15), said(playing, 20)))
    assert [r.outcome for r in records] == ["interrupted", "replied"]
    assert sink.cancelled, "the reply was cut, not played to the end"
    assert records[0].reply == ["Once upon a time."], "an interrupted turn records what was said"
    assert records[0].playback.synthesised_s > 0
    assert records[1].transcript == "wait, stop" and transcriber.heard[1] >= 20 * CHUNK_SAMPLES


def test_half_duplex_drops_speech_over_the_bot_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    playing = threading.Event()
    sink = MemorySink(on_play=playing.set, seconds_per_play=1.5)
    ears = hearing(barge_in_ms=None)
    runtime = runtime_with(ears, ScriptedTranscriber(["hello"]), ["Hi."], sink)
    with caplog.at_level("WARNING", logger="machine.listen.hearing"):
        records = run_with_timeout(runtime, Say(said(None, 15), said(playing, 20)))
    assert [r.outcome for r in records] == ["replied"] and not sink.cancelled
    assert ears.dropped_s >= 20 * CHUNK_SAMPLES / 16_000
    assert "dropped" in caplog.text and "barge_in" in caplog.text


@pytest.mark.posix
def test_a_forget_runs_only_after_the_turn_in_flight_has_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGUSR1 while the bot speaks: the turn is reset first, its jobs finish, and only then is memory
    forgotten, so a reply finishing meanwhile cannot be remembered after the forget."""
    stopped_playing = threading.Event()
    forgotten: list[bool] = []
    memory = RecentWindow(4)

    def forget() -> None:
        forgotten.append(stopped_playing.is_set())
        memory.exchanges.clear()

    class Playing(MemorySink):
        def end_reply(self, cancel: threading.Event) -> PlaybackReport:
            stopped_playing.set()
            return super().end_reply(cancel)

    def ask_for_a_forget() -> None:
        os.kill(os.getpid(), signal.SIGUSR1)

    sink = Playing(on_play=ask_for_a_forget, seconds_per_play=0.3)
    seen: list[TurnRecord] = []
    runtime = runtime_with(
        hearing(), ScriptedTranscriber(["my cat is Pickles"]), ["Nice."], sink, memory, seen.append
    )
    with StopSignals() as signals:  # the handlers are put back when the run ends
        signals.attach(runtime, forget)
        records = run_with_timeout(runtime, Say(said(None, 15)))
    assert forgotten == [True], "forgotten once, after the turn's playback had stopped"
    assert memory.exchanges == [], "nothing was remembered after the forget"
    assert [(r.outcome, r.transcript, r.reply) for r in records] == [("forgotten", "", [])], (
        "no transcript is kept in RAM after a forget"
    )
    assert [(r.outcome, r.transcript) for r in seen] == [("forgotten", "")]


class ThreadNoting(ScriptedChatModel):
    """Notes the thread that takes each piece of the reply (the one running the reply's checks)."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__(replies)
        self.taken_on: list[str] = []

    def stream(self, messages: list[ChatMessage], cancel: threading.Event, sampling: Sampling) -> ReplyStream:
        pieces = super().stream(messages, cancel, sampling)
        try:
            while True:
                piece = next(pieces)
                self.taken_on.append(threading.current_thread().name)
                yield piece
        except StopIteration as ended:
            return bool(ended.value)
        finally:
            pieces.close()


def test_the_whole_reply_is_made_on_the_think_job_not_the_synthesis_thread() -> None:
    """The reply's sentences after the first are streamed, checked and struck on the turn's think job
    (which owns those fields of the record); the synthesis thread only synthesises."""
    chat = ThreadNoting(["One is here. Two is here. Three is here."])
    runtime, *_ = make_runtime(["hello"], [], chat=chat)
    records = run_with_timeout(runtime, ScriptedSource([10]))
    assert records[0].reply == ["One is here.", "Two is here."]
    assert chat.taken_on and all(name.startswith("turn-job") for name in chat.taken_on), chat.taken_on


@pytest.mark.posix
def test_the_run_puts_back_every_signal_handler_it_replaced() -> None:
    """Ctrl-C, SIGTERM and SIGUSR1 are all restored when a run's signal handling closes (SIGINT and
    SIGUSR1 were left replaced before)."""
    numbers = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    before = {number: signal.getsignal(number) for number in numbers}
    runtime, *_ = make_runtime([], [])
    with StopSignals() as signals:
        signals.attach(runtime, lambda: None)
        assert all(signal.getsignal(number) is not before[number] for number in numbers)
    assert {number: signal.getsignal(number) for number in numbers} == before


@pytest.mark.posix
def test_a_stop_signal_only_posts_to_the_loop() -> None:
    """A stop signal arriving while the loop waits on its event queue stops the run (the handler posts,
    never blocking on a lock the interrupted loop may hold)."""
    runtime, *_ = make_runtime([], [])
    with StopSignals() as signals:
        signals.attach(runtime, None)
        threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
        records = runtime.run(UntilStopped())  # in the main thread, where signals are handled
    assert records == [] and signals.asked_at is not None


class UntilStopped:
    """A source that delivers nothing until the runtime stops (at most 30 s, against a hang)."""

    def run(self, deliver: Deliver, wait_for_turn: WaitForTurn, stopping: threading.Event) -> None:
        stopping.wait(30)


def test_finished_turns_kept_in_ram_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_module, "RECORDS_KEPT", 2)
    runtime, *_ = make_runtime(["one", "two", "three"], ["A.", "B.", "C."])
    records = run_with_timeout(runtime, ScriptedSource([10, 10, 10]))
    assert [r.transcript for r in records] == ["two", "three"]
    assert len(runtime.machine.visited) <= 256


def test_the_event_queue_is_bounded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With the loop stuck, events beyond the queue's size are dropped (and logged), not piled up; a stop
    or a reset (a signal's) is never dropped."""
    monkeypatch.setattr(runtime_module, "EVENT_QUEUE_SIZE", 4)
    runtime, *_ = make_runtime([], [])
    for _ in range(10):
        runtime._post(Start())
    assert runtime._events.qsize() == 4
    assert caplog.text.count("the event queue is full") == 6
    runtime.reset()
    runtime.stop()
    assert runtime._events.qsize() == 6


def test_sound_counts_as_activity_at_most_once_a_second() -> None:
    activity: list[float] = []
    thinker = make_thinker(ScriptedChatModel(["Hi."]), RecentWindow(2), max_sentences=1)
    runtime = Runtime(
        hearing(),
        ScriptedTranscriber(["hello"]),
        thinker,
        Speaker(ToneSynthesizer(), MemorySink()),
        on_turn=lambda record: None,
        on_activity=lambda: activity.append(time.monotonic()),
    )
    run_with_timeout(runtime, Say(said(None, 15)))
    assert 1 <= len(activity) <= 3, "activity extends the session, reported at most once a second"


# --- early work at a pause (speculation) ---------------------------------------------------------------

EARLY_TURN = ["idle", "listening", "transcribing", "thinking", "ready", "speaking", "listening"]
PAUSE_CHUNKS = 8
"""Silence after words that is a pause (200 ms) but not yet the end of a turn (500 ms without a model)."""


class FirstHeldBack(ScriptedTranscriber):
    """A slow model on the first utterance: its transcription ends only once `until()` holds (or after
    10 s). Each call gets the script's text for its own place in the order of calls, and `heard` is kept
    in that order too, however the calls' ends interleave."""

    def __init__(self, texts: list[str | Exception], until: Callable[[], bool]) -> None:
        super().__init__(texts)
        self.until = until
        self.calls = 0
        self._script = list(texts)
        self._lock = threading.Lock()

    def transcribe(self, samples: FloatAudio) -> Transcript:
        with self._lock:
            index = self.calls
            self.calls += 1
            self.heard.append(len(samples))
        if index == 0:
            deadline = time.monotonic() + 10
            while not self.until() and time.monotonic() < deadline:
                time.sleep(0.005)
        text = self._script[index]
        if isinstance(text, Exception):
            raise text
        return Transcript(text)


def early_runtime(
    transcriber: ScriptedTranscriber,
    replies: list[str],
    captions: Captions | None = None,
    crowd: Crowd | None = None,
) -> tuple[Runtime, ToneSynthesizer, MemorySink, RecentWindow]:
    runtime, _, _, synthesizer, sink, memory = make_runtime(
        [], replies, captions=captions, crowd=crowd, transcriber=transcriber, speculate=True
    )
    return runtime, synthesizer, sink, memory


def voices_heard(order: list[int]) -> tuple[Crowd, SpeakerTracker]:
    """A crowd whose voice embeddings come in `order` (see TwoVoices), and its tracker."""
    tracker = SpeakerTracker(0.72, "Celeste")
    return Crowd(TwoVoices(order), tracker, ReplyPolicy(ReplyPolicySettings(), "Celeste")), tracker


def test_work_started_at_a_pause_is_spoken_once_the_turn_is_over() -> None:
    transcriber = ScriptedTranscriber(["what is your favourite colour"])
    runtime, synthesizer, sink, memory = early_runtime(transcriber, ["Blue, like the sky."])
    source = Say(
        (None, silence(5) + tone(15) + silence(PAUSE_CHUNKS)),
        (in_state(runtime, "ready"), silence(25)),  # the reply waits until the end of the turn
    )
    records = run_with_timeout(runtime, source)
    assert len(records) == 1 and records[0].outcome == "replied" and records[0].early
    assert records[0].states == EARLY_TURN
    assert len(transcriber.heard) == 1, "the early transcript is the turn's: nothing is transcribed twice"
    assert synthesizer.spoken == ["Blue, like the sky."] and len(sink.replies) == 1, "no double reply"
    record = records[0]
    assert record.heard is not None and record.released is not None and record.first_audio is not None
    assert record.heard < record.endpoint <= record.released <= record.first_audio, (
        "the work started at the pause; the reply was released at the end of the turn, not before"
    )
    assert [e.question for e in memory.exchanges] == ["what is your favourite colour"]


def test_an_early_turn_is_learned_as_a_voice_once_it_stands() -> None:
    transcriber = ScriptedTranscriber(["what is your favourite colour"])
    crowd, tracker = voices_heard([0])
    runtime, _, _, _ = early_runtime(transcriber, ["Blue, like the sky."], crowd=crowd)
    source = Say(
        (None, silence(5) + tone(15) + silence(PAUSE_CHUNKS)),
        (in_state(runtime, "ready"), silence(25)),
    )
    records = run_with_timeout(runtime, source)
    assert [r.speaker for r in records] == ["speaker 1"] and records[0].early
    assert [(s.label, s.utterances) for s in tracker.speakers] == [("speaker 1", 1)]


def test_a_dropped_early_turn_leaves_no_speaker_behind() -> None:
    """The half sentence before a pause (its voice embedded from a second of speech, unlike the whole)
    is dropped when the speaker goes on: it must not stay in the session as a speaker of its own."""
    transcriber = ScriptedTranscriber(["I was thinking", "I was thinking about getting a dog"])
    crowd, tracker = voices_heard([1, 0])  # the half sounds like someone else
    runtime, _, _, _ = early_runtime(
        transcriber, ["Thinking about what?", "A dog would be lovely."], crowd=crowd
    )
    source = Say(
        (None, silence(5) + tone(15) + silence(PAUSE_CHUNKS)),
        (in_state(runtime, "ready"), tone(10) + silence(25)),
    )
    records = run_with_timeout(runtime, source)
    assert runtime.dropped_early == 1
    assert [r.speaker for r in records] == ["speaker 1"]
    assert [(s.label, s.utterances) for s in tracker.speakers] == [("speaker 1", 1)]


def test_a_speaker_who_goes_on_drops_the_early_reply_before_any_audio() -> None:
    """Resumed while the early reply is ready: it is never spoken, remembered, captioned or reported, and
    the words before and after the pause are answered as one utterance."""
    transcriber = ScriptedTranscriber(["I was thinking", "I was thinking about getting a dog"])
    captions = RecordingCaptions()
    runtime, synthesizer, sink, memory = early_runtime(
        transcriber, ["Thinking about what?", "A dog would be lovely."], captions
    )
    turns: list[TurnRecord] = []
    runtime._on_turn = turns.append
    source = Say(
        (None, silence(5) + tone(15) + silence(PAUSE_CHUNKS)),
        (in_state(runtime, "ready"), tone(10) + silence(25)),
    )
    records = run_with_timeout(runtime, source)
    assert [r.transcript for r in records] == ["I was thinking about getting a dog"] and turns == records
    assert records[0].turn == 1, "the dropped work took no turn number"
    assert runtime.dropped_early == 1
    assert len(sink.replies) == 1 and sum(len(part) for part in sink.replies[0]) == 1600, (
        "one sentence reached the sink: the early reply was at most synthesised ahead, never played"
    )
    assert synthesizer.spoken[-1] == "A dog would be lovely."
    assert records[0].reply == ["A dog would be lovely."]
    assert [e.answer for e in memory.exchanges] == ["A dog would be lovely."]
    assert not any("Thinking about what?" in " ".join(call) for call in captions.calls)
    assert transcriber.heard[1] >= transcriber.heard[0] + 10 * CHUNK_SAMPLES, (
        "the second transcript hears both parts: one utterance"
    )
    assert not runtime.machine.refused


def test_a_speaker_who_goes_on_while_the_bot_transcribes_cancels_before_thinking() -> None:
    transcriber = FirstHeldBack(
        ["so yesterday", "so yesterday I went to the beach"],
        until=lambda: runtime.machine.current.value == "listening",  # the speaker went on meanwhile
    )
    runtime, synthesizer, _, _ = early_runtime(transcriber, ["The beach is great."])
    chat_prompts = runtime._thinker._model.prompts  # type: ignore[attr-defined]
    source = Say(
        (None, silence(5) + tone(15) + silence(PAUSE_CHUNKS)),
        (in_state(runtime, "transcribing"), tone(10) + silence(25)),
    )
    records = run_with_timeout(runtime, source)
    assert [r.transcript for r in records] == ["so yesterday I went to the beach"]
    assert runtime.dropped_early == 1
    assert len(chat_prompts) == 1, "the early utterance never reached the chat model"
    assert synthesizer.spoken == ["The beach is great."]


def test_a_speaker_who_goes_on_after_the_end_of_the_turn_but_before_the_reply_is_answered_once() -> None:
    """The end of the turn was decided (here by the silence), but the speaker goes on while the bot is
    still transcribing: no reply to the first half, one reply to both."""

    transcriber = FirstHeldBack(
        ["my favourite food is probably", "my favourite food is probably noodles"],
        until=lambda: runtime.dropped_early > 0,
    )
    runtime, _, sink, memory = early_runtime(transcriber, ["Noodles are great."])
    source = Say(
        (None, silence(5) + tone(15) + silence(20)),  # 640 ms of silence: the turn ended
        (in_state(runtime, "transcribing"), tone(10) + silence(25)),
    )
    records = run_with_timeout(runtime, source)
    assert [r.transcript for r in records] == ["my favourite food is probably noodles"]
    assert runtime.dropped_early == 1 and len(sink.replies) == 1
    assert transcriber.heard[1] >= transcriber.heard[0] + 10 * CHUNK_SAMPLES, "both parts, one utterance"
    assert [e.question for e in memory.exchanges] == ["my favourite food is probably noodles"]


def test_a_speaker_who_goes_on_just_after_the_reply_started_retracts_it() -> None:
    """The turn's end was guessed wrong and the bot started to answer: the speaker's next words stop the
    reply, which is neither remembered, captioned nor reported, and both halves get one reply."""
    captions = RecordingCaptions()
    sink = MemorySink(seconds_per_play=1.0)
    runtime, transcriber, _, synthesizer, _, memory = make_runtime(
        ["my favourite food is", "my favourite food is noodles"],
        ["That is a start.", "Noodles are great."],
        sink=sink,
        captions=captions,
        speculate=True,
        retract_ms=1500,
    )
    source = Say(
        (None, silence(5) + tone(15) + silence(25)),  # 800 ms of silence: the turn is over
        (lambda: len(sink.replies) == 1, tone(10) + silence(25)),  # ...but they go on as it starts
    )
    records = run_with_timeout(runtime, source)
    assert [r.transcript for r in records] == ["my favourite food is noodles"]
    assert runtime.retracted == 1 and sink.cancelled, "the first reply was stopped"
    assert synthesizer.spoken[-1] == "Noodles are great." and len(sink.replies) == 2
    assert transcriber.heard[1] >= transcriber.heard[0] + 10 * CHUNK_SAMPLES, "both halves, one utterance"
    assert [e.question for e in memory.exchanges] == ["my favourite food is noodles"]
    shown = [call[1] for call in captions.calls if call[0] == "saying"]
    assert shown == ["Noodles are great."], captions.calls


def test_every_model_is_warmed_up_before_the_bot_listens() -> None:
    """The first turn of a process is as fast as the others: each model ran once before listening (the
    voice encoder too), the chat model's cache holds the persona (the warm-up prompt is the persona and a
    greeting); only then is the bot said to listen."""
    transcriber = ScriptedTranscriber(["", "hello"])
    chat = ScriptedChatModel(["Hi", "Hello there."])
    synthesizer, memory, sink = ToneSynthesizer(), RecentWindow(4), MemorySink()
    voices = EveryVoice()
    listening: list[tuple[int, int]] = []

    class Ears(Hearing):
        warmed = 0

        def warm_up(self) -> None:
            self.warmed += 1

    ears = Ears(Endpointer(LoudnessVad(), EndpointingSettings()), None, None, max_held_s=60)
    runtime = Runtime(
        ears,
        transcriber,
        make_thinker(chat, memory, persona="You are Testy."),
        Speaker(synthesizer, sink),
        on_turn=lambda record: None,
        warm_up=True,
        crowd=Crowd(voices, SpeakerTracker(0.5), ReplyPolicy(ReplyPolicySettings(), "Testy")),
    )
    result: list[list[TurnRecord]] = []

    def run() -> None:
        on = lambda: listening.append((len(voices.embedded), len(sink.replies)))  # noqa: E731
        result.append(runtime.run(ScriptedSource([15]), on_listening=on))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the runtime hung"
    records = result[0]
    assert ears.warmed == 1
    assert transcriber.heard[0] == 16_000, "whisper ran on a second of silence first"
    assert [m.content for m in chat.prompts[0]] == ["You are Testy.", "Hi."]
    assert chat.samplings[0].max_new_tokens == 1
    assert synthesizer.spoken[0] == "Hello."
    assert listening == [(1, 0)], "the voice encoder warm, nothing played yet"
    assert [r.transcript for r in records] == ["hello"] and synthesizer.spoken[1:] == ["Hello there."]
