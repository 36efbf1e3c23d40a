"""The turn state machine: every (state, trigger) pair, the guards, and invariants over random sequences."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machine.fsm import TRANSITIONS, Trigger, TurnMachine, TurnState, state_machine_page
from machine.ports import Transcript

S, T = TurnState, Trigger

# The expected behaviour, written independently of the table: (state, trigger, payload) -> next state.
WORDS = {"transcript": Transcript("hello there")}
NOISE = {"transcript": Transcript(" ... ")}
REPLY = {"reply": "Hi!"}
NO_REPLY = {"reply": None}
UNGUARDED: dict[tuple[TurnState, Trigger], TurnState] = {
    (S.IDLE, T.START): S.LISTENING,
    (S.LISTENING, T.UTTERANCE_ENDED): S.TRANSCRIBING,
    (S.LISTENING, T.STOP): S.IDLE,
    (S.TRANSCRIBING, T.STOP): S.IDLE,  # through reset: the turn in flight is abandoned
    (S.THINKING, T.STOP): S.IDLE,
    (S.SPEAKING, T.STOP): S.IDLE,
    (S.SPEAKING, T.SPOKEN): S.LISTENING,
    (S.SPEAKING, T.BARGE_IN): S.LISTENING,
    (S.RESET, T.SETTLE): S.IDLE,
}


def expected_next(state: TurnState, trigger: Trigger, payload: str) -> TurnState | None:
    """Where the table should go, or None when it must refuse the trigger."""
    if (state, trigger) == (S.TRANSCRIBING, T.TRANSCRIBED):
        return S.THINKING if payload == "words" else S.LISTENING  # noise-only or missing transcript
    if (state, trigger) == (S.THINKING, T.REPLY_STARTED):
        return S.SPEAKING if payload == "reply" else S.LISTENING  # speaking only with a reply
    return UNGUARDED.get((state, trigger))


PAYLOADS: dict[str, dict[str, Any]] = {
    "": {},
    "words": WORDS,
    "noise": NOISE,
    "reply": REPLY,
    "no_reply": NO_REPLY,
}
PATHS: dict[TurnState, list[tuple[Trigger, dict[str, Any]]]] = {
    S.IDLE: [],
    S.LISTENING: [(T.START, {})],
    S.TRANSCRIBING: [(T.START, {}), (T.UTTERANCE_ENDED, {})],
    S.THINKING: [(T.START, {}), (T.UTTERANCE_ENDED, {}), (T.TRANSCRIBED, WORDS)],
    S.SPEAKING: [(T.START, {}), (T.UTTERANCE_ENDED, {}), (T.TRANSCRIBED, WORDS), (T.REPLY_STARTED, REPLY)],
}


def machine_in(state: TurnState) -> TurnMachine:
    machine = TurnMachine()
    if state is S.RESET:
        # reset settles at once; reach the state through the machine's own transition table
        machine._machine.set_state(S.RESET.value)
        return machine
    for trigger, payload in PATHS[state]:
        assert machine.fire(trigger, **payload)
    assert machine.current is state
    return machine


@pytest.mark.parametrize("state", list(TurnState))
@pytest.mark.parametrize("trigger", [t for t in Trigger if t is not T.RESET])
@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_every_state_and_trigger(state: TurnState, trigger: Trigger, payload: str, caplog: Any) -> None:
    machine = machine_in(state)
    expected = expected_next(state, trigger, payload)
    with caplog.at_level(logging.WARNING, logger="machine.fsm"):
        changed = machine.fire(trigger, **PAYLOADS[payload])
    if expected is None:
        assert changed is False
        assert machine.current is state
        assert machine.refused[-1] == (state, trigger)
        assert f"refused trigger '{trigger.value}' in state '{state.value}'" in caplog.text
    else:
        assert changed is True
        assert machine.current is expected
        assert not machine.refused


@pytest.mark.parametrize("state", list(TurnState))
def test_reset_from_every_state_settles_in_idle(state: TurnState) -> None:
    machine = machine_in(state)
    assert machine.fire(T.RESET)
    assert machine.current is S.IDLE
    assert list(machine.visited)[-2:] == [S.RESET, S.IDLE]


def test_guards_read_the_payload() -> None:
    machine = machine_in(S.TRANSCRIBING)
    machine.fire(T.TRANSCRIBED, transcript=Transcript(""))
    assert machine.current is S.LISTENING, "an empty transcript goes back to listening"
    machine = machine_in(S.THINKING)
    machine.fire(T.REPLY_STARTED, reply="   ")
    assert machine.current is S.LISTENING, "a blank reply is not spoken"


def test_callbacks_receive_the_payload() -> None:
    seen: list[Any] = []
    machine = TurnMachine(on_enter={S.THINKING: lambda payload: seen.append(payload["transcript"].text)})
    for trigger, payload in PATHS[S.THINKING]:
        machine.fire(trigger, **payload)
    assert seen == ["hello there"]


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
        self.machine = TurnMachine(
            on_enter={
                S.TRANSCRIBING: self._open,
                S.THINKING: lambda p: self._hold("generation"),
                S.SPEAKING: self._speak,
                S.LISTENING: self._close,
                S.IDLE: self._close,
            }
        )

    @property
    def held(self) -> set[tuple[int, str]]:
        """(turn, work) for everything any turn still holds."""
        return {(turn, work) for turn, works in enumerate(self.turns) for work in works}

    def _open(self, payload: dict[str, Any]) -> None:
        self.turns.append({"utterance"})
        self.current = len(self.turns) - 1

    def _hold(self, work: str) -> None:
        if self.current is None:
            raise RuntimeError("no turn in flight")  # as the runtime's `_require_turn`
        self.turns[self.current].add(work)

    def _speak(self, payload: dict[str, Any]) -> None:
        reply = payload.get("reply")
        if not (reply and reply.strip()):
            self.spoken_without_reply = True
        self._hold("playback")

    def _close(self, payload: dict[str, Any]) -> None:
        if self.current is not None:
            self.turns[self.current].clear()
            self.current = None


#: What the turn in flight holds in each working state, and nothing else may be held then.
WORK: dict[TurnState, set[str]] = {
    S.TRANSCRIBING: {"utterance"},
    S.THINKING: {"utterance", "generation"},
    S.SPEAKING: {"utterance", "generation", "playback"},
}

#: Every trigger with every payload worth telling apart, by the names in PAYLOADS.
EVENTS: list[tuple[Trigger, str]] = [(t, "") for t in Trigger] + [
    (T.TRANSCRIBED, "words"),
    (T.TRANSCRIBED, "noise"),
    (T.REPLY_STARTED, "reply"),
    (T.REPLY_STARTED, "no_reply"),
]


def _draws(state: TurnState) -> st.SearchStrategy[tuple[Trigger, str]]:
    """Half the time a move the expected table accepts in `state`, so sequences get deep into a turn
    (uniform draws seldom reach speaking); otherwise any event, refused ones included."""
    moves = [(t, p) for t, p in EVENTS if expected_next(state, t, p) is not None]
    anything = st.sampled_from(EVENTS)
    return st.one_of(st.sampled_from(moves), anything) if moves else anything


NEXT_EVENT = {state: _draws(state) for state in TurnState}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_trigger_sequences_keep_the_invariants(data: st.DataObject) -> None:
    turn = Turn()
    for _ in range(data.draw(st.integers(0, 40), label="length")):
        before = turn.machine.current
        trigger, payload = data.draw(NEXT_EVENT[before])
        allowed = trigger in turn.machine.allowed()
        changed = turn.machine.fire(trigger, **PAYLOADS[payload])
        assert changed == allowed
        if not changed:
            assert turn.machine.current is before
        state = turn.machine.current
        if state in (S.IDLE, S.LISTENING):
            assert not turn.held, "no turn is left half-open"
        elif state in WORK:
            assert turn.held == {(turn.current, work) for work in WORK[state]}, (
                f"{state.value} holds its own turn's work and nothing else"
            )
        assert not turn.spoken_without_reply, "nothing is spoken without a reply"
    assert turn.machine.fire(T.RESET)
    assert turn.machine.current is S.IDLE and not turn.held, "reset always reaches idle, releasing the turn"
