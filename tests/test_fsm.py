"""The turn state machine: every (state, trigger) pair, the guards, and invariants over random sequences,
for final utterances and for early ones (work started at a pause, before the turn is over)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machine.events import Transcribed, Trigger, TurnEvent, Typed, UtteranceEnded
from machine.fsm import TRANSITIONS, TurnMachine, TurnState, state_machine_page
from machine.ports import ChatboxMessage, Transcript, Utterance

S, T = TurnState, Trigger

EVENT_OF: dict[Trigger, type[TurnEvent]] = {kind.trigger: kind for kind in TurnEvent.__subclasses__()}
UTTERANCE = Utterance(np.zeros(512, dtype=np.float32), last_voiced_at=0.0, endpoint_at=0.0)
MESSAGE = ChatboxMessage("hello there", "Milo", seen_at=0.0, settled_at=1.0)


def event(trigger: Trigger, **payload: Any) -> TurnEvent:
    """The trigger's event carrying `payload`; what an event requires and the payload lacks is empty (an
    utterance of silence, a blank transcript, no reply)."""
    kind = EVENT_OF[trigger]
    wanted = {field.name for field in dataclasses.fields(kind)}
    given = {name: value for name, value in payload.items() if name in wanted}
    if kind is UtteranceEnded:
        given.setdefault("utterance", UTTERANCE)
    if kind is Transcribed:
        given.setdefault("transcript", Transcript(""))
    if kind is Typed:
        given.setdefault("message", MESSAGE)
    if "reply" in wanted:
        given.setdefault("reply", None)
    return kind(**given)


def fire(machine: TurnMachine, trigger: Trigger, **payload: Any) -> bool:
    """Fire the trigger's event (see `event`)."""
    return machine.fire(event(trigger, **payload))


# The expected behaviour, written independently of the table: (state, trigger, payload) -> next state.
WORDS = {"transcript": Transcript("hello there")}
NOISE = {"transcript": Transcript(" ... ")}
REPLY = {"reply": "Hi!"}
NO_REPLY = {"reply": None}
EARLY = {"final": False}
UNGUARDED: dict[tuple[TurnState, Trigger], TurnState] = {
    (S.IDLE, T.START): S.LISTENING,
    (S.LISTENING, T.UTTERANCE_ENDED): S.TRANSCRIBING,
    (S.LISTENING, T.TYPED): S.TRANSCRIBING,  # a chatbox message: attributed, not transcribed
    (S.LISTENING, T.STOP): S.IDLE,
    (S.TRANSCRIBING, T.STOP): S.IDLE,  # through reset: the turn in flight is abandoned
    (S.THINKING, T.STOP): S.IDLE,
    (S.READY, T.STOP): S.IDLE,
    (S.SPEAKING, T.STOP): S.IDLE,
    (S.SPEAKING, T.SPOKEN): S.LISTENING,
    (S.SPEAKING, T.BARGE_IN): S.LISTENING,
    (S.RESET, T.SETTLE): S.IDLE,
    # early work: the end of the speaker's turn lets it go on; the speaker going on drops it
    (S.TRANSCRIBING, T.TURN_CONFIRMED): S.TRANSCRIBING,
    (S.THINKING, T.TURN_CONFIRMED): S.THINKING,
    (S.READY, T.TURN_CONFIRMED): S.SPEAKING,
    (S.TRANSCRIBING, T.USER_RESUMED): S.LISTENING,
    (S.THINKING, T.USER_RESUMED): S.LISTENING,
    (S.READY, T.USER_RESUMED): S.LISTENING,
    (S.SPEAKING, T.USER_RESUMED): S.LISTENING,  # retracted
}


def expected_next(
    state: TurnState, trigger: Trigger, payload: str, turn_over: bool = True
) -> TurnState | None:
    """Where the table should go, or None when it must refuse the trigger; `turn_over` is False while the
    turn in flight started early and its speaker's turn is not confirmed over."""
    if (state, trigger) == (S.TRANSCRIBING, T.TRANSCRIBED):
        return S.THINKING if payload == "words" else S.LISTENING  # noise-only or missing transcript
    if (state, trigger) == (S.THINKING, T.REPLY_STARTED):
        if payload != "reply":
            return S.LISTENING  # speaking only with a reply
        return S.SPEAKING if turn_over else S.READY  # and only once the speaker's turn is over
    return UNGUARDED.get((state, trigger))


PAYLOADS: dict[str, dict[str, Any]] = {
    "": {},
    "words": WORDS,
    "noise": NOISE,
    "reply": REPLY,
    "no_reply": NO_REPLY,
    "early": EARLY,
}
PATHS: dict[TurnState, list[tuple[Trigger, dict[str, Any]]]] = {
    S.IDLE: [],
    S.LISTENING: [(T.START, {})],
    S.TRANSCRIBING: [(T.START, {}), (T.UTTERANCE_ENDED, {})],
    S.THINKING: [(T.START, {}), (T.UTTERANCE_ENDED, {}), (T.TRANSCRIBED, WORDS)],
    S.READY: [(T.START, {}), (T.UTTERANCE_ENDED, EARLY), (T.TRANSCRIBED, WORDS), (T.REPLY_STARTED, REPLY)],
    S.SPEAKING: [(T.START, {}), (T.UTTERANCE_ENDED, {}), (T.TRANSCRIBED, WORDS), (T.REPLY_STARTED, REPLY)],
}


def machine_in(state: TurnState, early: bool = False) -> TurnMachine:
    """A machine in `state`, reached through the table; `early`: the turn in flight started at a pause."""
    machine = TurnMachine()
    if state is S.RESET:
        # reset settles at once; reach the state through the machine's own transition table
        machine._machine.set_state(S.RESET.value)
        return machine
    for trigger, payload in PATHS[state]:
        assert fire(machine, trigger, **(EARLY if trigger is T.UTTERANCE_ENDED and early else payload))
    assert machine.current is state
    return machine


CASES = [(state, False) for state in TurnState if state is not S.READY] + [
    (S.TRANSCRIBING, True),
    (S.THINKING, True),
    (S.READY, True),
]


@pytest.mark.parametrize(("state", "early"), CASES)
@pytest.mark.parametrize("trigger", [t for t in Trigger if t is not T.RESET])
@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_every_state_and_trigger(
    state: TurnState, early: bool, trigger: Trigger, payload: str, caplog: Any
) -> None:
    machine = machine_in(state, early)
    expected = expected_next(state, trigger, payload, turn_over=not early)
    with caplog.at_level(logging.WARNING, logger="machine.fsm"):
        changed = fire(machine, trigger, **PAYLOADS[payload])
    if expected is None:
        assert changed is False
        assert machine.current is state
        assert machine.refused[-1] == (state, trigger)
        assert f"refused trigger '{trigger.value}' in state '{state.value}'" in caplog.text
    else:
        assert changed is True
        assert machine.current is expected
        assert not machine.refused


@pytest.mark.parametrize(("state", "early"), CASES)
def test_reset_from_every_state_settles_in_idle(state: TurnState, early: bool) -> None:
    machine = machine_in(state, early)
    assert fire(machine, T.RESET)
    assert machine.current is S.IDLE
    assert list(machine.visited)[-2:] == [S.RESET, S.IDLE]


def test_guards_read_the_payload() -> None:
    machine = machine_in(S.TRANSCRIBING)
    fire(machine, T.TRANSCRIBED, transcript=Transcript(""))
    assert machine.current is S.LISTENING, "an empty transcript goes back to listening"
    machine = machine_in(S.THINKING)
    fire(machine, T.REPLY_STARTED, reply="   ")
    assert machine.current is S.LISTENING, "a blank reply is not spoken"


def test_speech_not_addressed_to_the_bot_gets_no_reply() -> None:
    machine = machine_in(S.TRANSCRIBING)
    fire(machine, T.TRANSCRIBED, transcript=Transcript("Did you see that jump?"), addressed=False)
    assert machine.current is S.LISTENING, "the reply policy said it was said to someone else"
    machine = machine_in(S.TRANSCRIBING)
    fire(machine, T.TRANSCRIBED, transcript=Transcript("Celeste, hi!"), addressed=True)
    assert machine.current is S.THINKING


def test_an_early_reply_waits_for_the_end_of_the_turn() -> None:
    machine = machine_in(S.THINKING, early=True)
    fire(machine, T.REPLY_STARTED, reply="Hi!")
    assert machine.current is S.READY, "nothing is said while the speaker may go on"
    fire(machine, T.TURN_CONFIRMED)
    assert machine.current is S.SPEAKING


def test_a_turn_confirmed_while_thinking_speaks_at_once() -> None:
    confirmed: list[TurnEvent] = []
    machine = TurnMachine(on_turn_over=confirmed.append)
    for trigger, payload in PATHS[S.THINKING]:
        fire(machine, trigger, **(EARLY if trigger is T.UTTERANCE_ENDED else payload))
    assert fire(machine, T.TURN_CONFIRMED, early_id=7)
    assert machine.current is S.THINKING and confirmed == [event(T.TURN_CONFIRMED, early_id=7)]
    fire(machine, T.REPLY_STARTED, reply="Hi!")
    assert machine.current is S.SPEAKING


def test_the_speaker_going_on_drops_early_work_in_every_state() -> None:
    for state in (S.TRANSCRIBING, S.THINKING, S.READY):
        machine = machine_in(state, early=True)
        assert fire(machine, T.USER_RESUMED)
        assert machine.current is S.LISTENING
        assert fire(machine, T.UTTERANCE_ENDED)
        assert machine.turn_over, "the next utterance (final) starts a turn of its own"


def test_callbacks_receive_the_event() -> None:
    seen: list[Any] = []
    machine = TurnMachine(on_enter={S.THINKING: seen.append})
    for trigger, payload in PATHS[S.THINKING]:
        fire(machine, trigger, **payload)
    assert seen == [event(T.TRANSCRIBED, **WORDS)]


def test_one_table_drives_the_machine() -> None:
    machine = TurnMachine()
    triggers = {row["trigger"] for row in TRANSITIONS}
    assert triggers == set(Trigger)
    assert not hasattr(machine, "to_idle"), "auto transitions must be off"


def test_state_diagram_in_docs_is_current() -> None:
    page = Path(__file__).resolve().parents[1] / "docs" / "state-machine.md"
    assert page.read_text(encoding="utf-8") == state_machine_page(), (
        "docs/state-machine.md is stale: run `python -m machine diagram > docs/state-machine.md`"
    )


class Turn:
    """A model of what the runtime holds for a turn, driven by the machine's callbacks as the runtime's are.

    Entering transcribing opens a turn (it holds the utterance), thinking adds generation, speaking adds
    playback; reset only cancels; listening and idle close *the current turn* (the runtime's `_close_turn`),
    releasing what that one turn holds. Nothing is cleared wholesale, so the invariants can fail: a table that
    opens a turn while another is open leaves the older one's work held, and one that goes back to an earlier
    state of a turn carries work that state should no longer hold.
    """

    def __init__(self) -> None:
        self.turns: list[set[str]] = []  # what each turn opened so far still holds
        self.current: int | None = None  # like the runtime's `_turn`: a new turn replaces it
        self.spoken_without_reply = False
        self.ready_reply: str | None = None
        self.machine = TurnMachine(
            on_enter={
                S.TRANSCRIBING: self._open,
                S.THINKING: lambda p: self._hold("generation"),
                S.READY: self._ready,
                S.SPEAKING: self._speak,
                S.LISTENING: self._close,
                S.IDLE: self._close,
            }
        )

    @property
    def held(self) -> set[tuple[int, str]]:
        """(turn, work) for everything any turn still holds."""
        return {(turn, work) for turn, works in enumerate(self.turns) for work in works}

    def _open(self, event: TurnEvent) -> None:
        self.turns.append({"utterance"})
        self.current = len(self.turns) - 1

    def _hold(self, work: str) -> None:
        if self.current is None:
            raise RuntimeError("no turn in flight")  # as the runtime's `_require_turn`
        self.turns[self.current].add(work)

    def _ready(self, event: TurnEvent) -> None:
        self.ready_reply = getattr(
            event, "reply", None
        )  # held until the turn is confirmed (an event of its own)

    def _speak(self, event: TurnEvent) -> None:
        reply = getattr(event, "reply", self.ready_reply if self.machine.previous is S.READY else None)
        if not (reply and reply.strip()):
            self.spoken_without_reply = True
        self._hold("playback")

    def _close(self, event: TurnEvent) -> None:
        if self.current is not None:
            self.turns[self.current].clear()
            self.current = None


#: What the turn in flight holds in each working state, and nothing else may be held then.
WORK: dict[TurnState, set[str]] = {
    S.TRANSCRIBING: {"utterance"},
    S.THINKING: {"utterance", "generation"},
    S.READY: {"utterance", "generation"},
    S.SPEAKING: {"utterance", "generation", "playback"},
}

#: Every trigger with every payload worth telling apart, by the names in PAYLOADS.
EVENTS: list[tuple[Trigger, str]] = [(t, "") for t in Trigger] + [
    (T.UTTERANCE_ENDED, "early"),
    (T.TRANSCRIBED, "words"),
    (T.TRANSCRIBED, "noise"),
    (T.REPLY_STARTED, "reply"),
    (T.REPLY_STARTED, "no_reply"),
]


def _draws(state: TurnState, turn_over: bool) -> st.SearchStrategy[tuple[Trigger, str]]:
    """Half the time a move the expected table accepts in `state`, so sequences get deep into a turn
    (uniform draws seldom reach speaking); otherwise any event, refused ones included."""
    moves = [(t, p) for t, p in EVENTS if expected_next(state, t, p, turn_over) is not None]
    anything = st.sampled_from(EVENTS)
    return st.one_of(st.sampled_from(moves), anything) if moves else anything


NEXT_EVENT = {(state, over): _draws(state, over) for state in TurnState for over in (True, False)}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_trigger_sequences_keep_the_invariants(data: st.DataObject) -> None:
    turn = Turn()
    over = True  # kept here, apart from the machine: has the speaker of the turn in flight finished?
    for _ in range(data.draw(st.integers(0, 40), label="length")):
        before = turn.machine.current
        trigger, payload = data.draw(NEXT_EVENT[before, over])
        allowed = trigger in turn.machine.allowed()
        changed = fire(turn.machine, trigger, **PAYLOADS[payload])
        assert changed == allowed
        if not changed:
            assert turn.machine.current is before
        elif trigger is T.UTTERANCE_ENDED:
            over = payload != "early"
        elif trigger in (T.TURN_CONFIRMED, T.TYPED):  # a typed message is a whole turn
            over = True
        state = turn.machine.current
        if state is S.SPEAKING and before is not S.SPEAKING:
            assert over, "nothing is said before the speaker's turn is over"
        if state in (S.IDLE, S.LISTENING):
            assert not turn.held, "no turn is left half-open"
        elif state in WORK:
            assert turn.held == {(turn.current, work) for work in WORK[state]}, (
                f"{state.value} holds its own turn's work and nothing else"
            )
        assert not turn.spoken_without_reply, "nothing is spoken without a reply"
    assert fire(turn.machine, T.RESET)
    assert turn.machine.current is S.IDLE and not turn.held, "reset always reaches idle, releasing the turn"
