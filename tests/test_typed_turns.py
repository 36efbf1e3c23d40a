"""Chatbox messages read on screen are turns of the player who typed them: no transcription, the same reply
policy, memory, speech and captions; one that arrives while the bot is busy waits its turn."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from chat_fakes import GatedChatModel
from test_endpointing import tone
from test_runtime import MemorySink, make_runtime, run_with_timeout

from machine import runtime as runtime_module
from machine.crowd.attribution import TYPIST, Crowd
from machine.crowd.policy import ReplyPolicy
from machine.crowd.speakers import SpeakerTracker
from machine.events import UtteranceEnded
from machine.fsm import TurnState
from machine.ports import AudioChunk, ChatboxMessage, Mode, Utterance
from machine.runtime import Runtime
from machine.settings import ReplyPolicySettings


def message(text: str, name: str | None = "Milo") -> ChatboxMessage:
    now = time.monotonic()
    return ChatboxMessage(text, name, seen_at=now - 1.5, settled_at=now)


class Typing:
    """A source that stays silent while chatbox messages are handed to the runtime, until all are answered;
    `first` runs once the bot listens, before them (a test's own moves)."""

    def __init__(
        self,
        runtime: Runtime,
        messages: list[ChatboxMessage],
        together: bool = False,
        turns: int | None = None,
        first: Callable[[], None] | None = None,
    ) -> None:
        self.runtime, self.messages, self.together, self.first = runtime, messages, together, first
        self.turns = len(messages) if turns is None else turns

    def run(
        self,
        deliver: Callable[[AudioChunk], None],
        wait_for_turn: Callable[[float], bool],
        stopping: threading.Event,
    ) -> None:
        if self.first is not None:
            assert wait_for_turn(10), "the bot never listened"
            self.first()
        for typed in self.messages:
            if not self.together:
                assert wait_for_turn(10), "the bot never came back to listening"
            self.runtime.typed(typed)
            time.sleep(0.05)
        deadline = time.monotonic() + 20
        while len(self.runtime.records) < self.turns and time.monotonic() < deadline:
            time.sleep(0.01)
        assert wait_for_turn(10) or stopping.is_set()


def crowd(policy: str = "always") -> Crowd:
    return Crowd(
        None, SpeakerTracker(0.72, "Celeste"), ReplyPolicy(ReplyPolicySettings(policy=policy), "Celeste")
    )


def test_a_typed_message_is_answered_aloud_as_its_players_turn_without_transcription() -> None:
    runtime, transcriber, chat, synthesizer, sink, memory = make_runtime(
        [], ["Blue, like the sky."], crowd=crowd()
    )
    records = run_with_timeout(runtime, Typing(runtime, [message("Celeste, what is your favourite colour?")]))
    (record,) = records
    assert (record.transcript, record.speaker, record.outcome, record.typed) == (
        "Celeste, what is your favourite colour?",
        "Milo",
        "replied",
        True,
    )
    assert record.states == ["idle", "listening", "transcribing", "thinking", "speaking", "listening"]
    assert transcriber.heard == [], "a typed turn is never transcribed"
    assert synthesizer.spoken == ["Blue, like the sky."] and len(sink.replies) == 1
    assert "You are talking with Milo;" in chat.prompts[0][0].content
    (exchange,) = memory.exchanges
    assert (exchange.question, exchange.speaker) == ("Celeste, what is your favourite colour?", "Milo")
    assert record.last_voiced < record.endpoint <= record.heard <= record.first_audio  # type: ignore[operator]


def test_messages_typed_while_the_bot_is_busy_are_answered_in_turn() -> None:
    runtime, _, _, synthesizer, _, _ = make_runtime(
        [], ["One.", "Two.", "Three."], sink=MemorySink(seconds_per_play=0.1), crowd=crowd()
    )
    typed = [message("first", "Milo"), message("second", "Ana"), message("third", None)]
    records = run_with_timeout(runtime, Typing(runtime, typed, together=True))
    assert [(r.transcript, r.speaker, r.outcome) for r in records] == [
        ("first", "Milo", "replied"),
        ("second", "Ana", "replied"),
        ("third", TYPIST, "replied"),
    ]
    assert synthesizer.spoken == ["One.", "Two.", "Three."]


def test_the_reply_policy_holds_for_typed_messages() -> None:
    runtime, _, chat, _, _, _ = make_runtime([], ["Hi Milo!"], crowd=crowd("addressed"))
    typed = [message("anyone up for the club world?", "Ana"), message("hey Celeste!", "Milo")]
    records = run_with_timeout(runtime, Typing(runtime, typed))
    assert [(r.speaker, r.outcome) for r in records] == [("Ana", "not_addressed"), ("Milo", "replied")]
    assert len(chat.prompts) == 1


def test_a_message_that_waited_too_long_is_not_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_module, "TYPED_STALE_S", 0.15)
    runtime, _, _, synthesizer, _, _ = make_runtime(
        [], ["One.", "Two."], sink=MemorySink(seconds_per_play=0.3), crowd=crowd()
    )
    typed = [message("first"), message("second", "Ana")]
    records = run_with_timeout(runtime, Typing(runtime, typed, together=True, turns=1))
    time.sleep(0.1)
    assert [r.transcript for r in records] == ["first"]
    assert synthesizer.spoken == ["One."], "the second waited 0.3 s, past 0.15"


def test_speech_that_ended_just_as_a_typed_turn_started_is_answered_after_it() -> None:
    """The race between the two ways a turn starts: hearing hands an utterance over just as the loop starts
    a typed turn. The utterance reaches the loop during the typed turn; it is the next turn, not lost."""
    gate = threading.Event()
    chat = GatedChatModel([], gate, ["Sure thing."], "the typed turn's reply was never let through")
    runtime, transcriber, _, _, _, _ = make_runtime(["hello from the mic"], [], chat=chat, crowd=crowd())

    def typed_then_spoken() -> None:
        runtime.typed(message("hi Celeste"))
        deadline = time.monotonic() + 10
        while runtime.machine.current is not TurnState.THINKING:
            assert time.monotonic() < deadline, "the typed turn never started"
            time.sleep(0.005)
        utterance = Utterance(tone(20)[0].repeat(20), time.monotonic(), time.monotonic())
        runtime._post(UtteranceEnded(utterance=utterance))  # as hearing posts it, a moment too late
        time.sleep(0.1)
        gate.set()

    records = run_with_timeout(runtime, Typing(runtime, [], turns=2, first=typed_then_spoken))
    assert [(r.transcript, r.typed, r.outcome) for r in records] == [
        ("hi Celeste", True, "replied"),
        ("hello from the mic", False, "replied"),
    ]
    assert len(transcriber.heard) == 1


def test_a_message_kept_while_speech_was_on_its_way_is_answered_when_that_speech_comes_to_nothing() -> None:
    runtime, _, _, synthesizer, _, _ = make_runtime([], ["Hello Milo."], crowd=crowd())
    ears = runtime._hearing

    def while_hearing_holds_something() -> None:
        ears.set_mode(Mode.BUSY)  # as if hearing had handed speech on: the message must wait
        runtime.typed(message("hi Celeste"))
        time.sleep(0.25)
        assert not runtime.records, "it waited"
        ears.set_mode(Mode.LISTENING)  # the speech came to nothing: nothing else will start a turn

    records = run_with_timeout(runtime, Typing(runtime, [], turns=1, first=while_hearing_holds_something))
    assert [(r.transcript, r.outcome) for r in records] == [("hi Celeste", "replied")]
    assert synthesizer.spoken == ["Hello Milo."]
