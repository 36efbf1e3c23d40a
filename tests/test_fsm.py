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
    assert machine.visited[-2:] == [S.RESET, S.IDLE]


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
    """A model of what a turn holds, driven by the machine's callbacks (like the runtime)."""

    def __init__(self) -> None:
        self.held: set[str] = set()
        self.spoken_without_reply = False
        self.reply: str | None = None
        self.machine = TurnMachine(
            on_enter={
                S.TRANSCRIBING: lambda p: self.held.add("utterance"),
                S.THINKING: lambda p: self.held.add("generation"),
                S.SPEAKING: self._speak,
                S.LISTENING: lambda p: self.held.clear(),
                S.RESET: lambda p: self.held.clear(),
                S.IDLE: lambda p: self.held.clear(),
            }
        )

    def _speak(self, payload: dict[str, Any]) -> None:
        reply = payload.get("reply")
        if not (reply and reply.strip()):
            self.spoken_without_reply = True
        self.held.add("playback")


events = st.sampled_from(
    [(t, {}) for t in Trigger]
    + [(T.TRANSCRIBED, WORDS), (T.TRANSCRIBED, NOISE), (T.REPLY_STARTED, REPLY), (T.REPLY_STARTED, NO_REPLY)]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=40))
def test_random_trigger_sequences_keep_the_invariants(sequence: list[tuple[Trigger, dict[str, Any]]]) -> None:
    turn = Turn()
    for trigger, payload in sequence:
        before = turn.machine.current
        allowed = trigger in turn.machine.allowed()
        changed = turn.machine.fire(trigger, **payload)
        assert changed == allowed
        if not changed:
            assert turn.machine.current is before
        if turn.machine.current in (S.IDLE, S.LISTENING):
            assert not turn.held, "no turn is left half-open"
        assert not turn.spoken_without_reply, "nothing is spoken without a reply"
    assert turn.machine.fire(T.RESET)
    assert turn.machine.current is S.IDLE and not turn.held, "reset always reaches idle, releasing the turn"
