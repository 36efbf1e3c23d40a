"""The turn state machine: one table, guards, and a log of every refused trigger.

Callbacks attached here only start or cancel work. Finished work reports back as a trigger through the
runtime's single event queue, so the runtime's loop is the only caller of :meth:`TurnMachine.fire`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Any

from transitions import EventData, Machine, MachineError

from machine.events import ReplyStarted, Settle, Transcribed, Trigger, TurnEvent, UtteranceEnded

log = logging.getLogger(__name__)


class TurnState(str, Enum):
    """States of one conversation turn."""

    IDLE = "idle"
    LISTENING = "listening"
    TRANSCRIBING = "transcribing"
    THINKING = "thinking"
    READY = "ready"
    """A reply is ready, but the speaker only paused: it waits until their turn is over."""
    SPEAKING = "speaking"
    RESET = "reset"


def _event(data: EventData) -> TurnEvent:
    event: TurnEvent = data.kwargs["event"]
    return event


def _has_words(data: EventData) -> bool:
    """An empty or noise-only transcript is not worth a reply."""
    event = _event(data)
    return isinstance(event, Transcribed) and event.transcript.has_words


def _addressed(data: EventData) -> bool:
    """The reply policy answers this speaker (see :mod:`machine.crowd.policy`; always, by default)."""
    event = _event(data)
    return isinstance(event, Transcribed) and event.addressed


def _has_reply(data: EventData) -> bool:
    """The bot speaks only when the thinker produced something to say."""
    event = _event(data)
    return isinstance(event, ReplyStarted) and bool(event.reply and event.reply.strip())


def _turn_over(data: EventData) -> bool:
    """The speaker's turn is over: the utterance was final, or a pause was confirmed since."""
    return bool(getattr(data.model, "turn_over", True))


S, T = TurnState, Trigger

#: The whole behaviour of a turn, in one table. Order matters where a trigger has guarded branches:
#: transitions tries them top to bottom and takes the first whose guard passes.
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": T.START, "source": S.IDLE, "dest": S.LISTENING},
    # an early (speculative) utterance starts the same work as a final one; nothing is said until the
    # speaker's turn is over
    {
        "trigger": T.UTTERANCE_ENDED,
        "source": S.LISTENING,
        "dest": S.TRANSCRIBING,
        "before": "_note_turn_start",
    },
    # a chatbox message read on screen starts a turn too: "transcribing" only attributes it (no audio)
    {"trigger": T.TYPED, "source": S.LISTENING, "dest": S.TRANSCRIBING, "before": "_note_turn_start"},
    {
        "trigger": T.TURN_CONFIRMED,
        "source": [S.TRANSCRIBING, S.THINKING],
        "dest": None,  # internal: the work goes on, now for a finished turn
        "before": "_note_turn_over",
    },
    {"trigger": T.TURN_CONFIRMED, "source": S.READY, "dest": S.SPEAKING, "before": "_note_turn_over"},
    # the speaker went on: the turn's work is dropped, also just after the reply started (retracted)
    {
        "trigger": T.USER_RESUMED,
        "source": [S.TRANSCRIBING, S.THINKING, S.READY, S.SPEAKING],
        "dest": S.LISTENING,
    },
    {
        "trigger": T.TRANSCRIBED,
        "source": S.TRANSCRIBING,
        "dest": S.THINKING,
        "conditions": [_has_words, _addressed],
    },
    # no words, or said to someone else (the reply policy): no reply
    {"trigger": T.TRANSCRIBED, "source": S.TRANSCRIBING, "dest": S.LISTENING},
    {
        "trigger": T.REPLY_STARTED,
        "source": S.THINKING,
        "dest": S.SPEAKING,
        "conditions": [_has_reply, _turn_over],
    },
    {"trigger": T.REPLY_STARTED, "source": S.THINKING, "dest": S.READY, "conditions": _has_reply},
    {"trigger": T.REPLY_STARTED, "source": S.THINKING, "dest": S.LISTENING, "unless": _has_reply},
    {"trigger": T.SPOKEN, "source": S.SPEAKING, "dest": S.LISTENING},
    {"trigger": T.BARGE_IN, "source": S.SPEAKING, "dest": S.LISTENING},
    {"trigger": T.STOP, "source": S.LISTENING, "dest": S.IDLE},
    # a turn in flight when the runtime stops is abandoned: reset, then idle
    {
        "trigger": T.STOP,
        "source": [S.TRANSCRIBING, S.THINKING, S.READY, S.SPEAKING],
        "dest": S.RESET,
        "after": "_settle_after_reset",
    },
    {"trigger": T.RESET, "source": "*", "dest": S.RESET, "after": "_settle_after_reset"},
    {"trigger": T.SETTLE, "source": S.RESET, "dest": S.IDLE},
]

StateCallback = Callable[[TurnEvent], None]
"""Called with the event that entered the state."""


def _plain(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table with enum members replaced by their names, as transitions expects."""

    def plain(value: Any) -> Any:
        if isinstance(value, list):
            return [plain(item) for item in value]
        return value.value if isinstance(value, Enum) else value

    return [{key: plain(value) for key, value in row.items()} for row in table]


class TurnMachine:
    """Wraps a `transitions.Machine` built from :data:`TRANSITIONS`.

    `on_enter` maps a state to a callback that receives the event that entered it; `fire` is the only way
    to change state, and an event the table does not allow in the current state is refused and logged.
    """

    state: str  # set by transitions

    def __init__(
        self,
        on_enter: dict[TurnState, StateCallback] | None = None,
        on_any_enter: Callable[[TurnState], None] = lambda state: None,
        on_turn_over: StateCallback = lambda event: None,
        history: int = 256,
    ) -> None:
        self._on_enter = dict(on_enter or {})
        self._on_any_enter = on_any_enter
        self._on_turn_over = on_turn_over
        self.visited: deque[TurnState] = deque([TurnState.IDLE], maxlen=history)
        """The most recent states entered, oldest first (at most `history` of them)."""
        self.previous = TurnState.IDLE
        """The state before the current one."""
        self.refused: deque[tuple[TurnState, Trigger]] = deque(maxlen=history)
        """The most recent refused triggers, with the state that refused them."""
        self.refused_count = 0
        self.turn_over = True
        """Whether the current turn's speaker has finished (False after an early utterance, until the
        pause is confirmed); the guard between thinking and speaking."""
        self._machine = Machine(
            model=self,
            # `on_enter` runs before a transition's `after`, so states are recorded in the order entered.
            states=[{"name": state.value, "on_enter": self._entered} for state in TurnState],
            transitions=_plain(TRANSITIONS),
            initial=TurnState.IDLE.value,
            auto_transitions=False,
            ignore_invalid_triggers=False,
            send_event=True,
        )

    @property
    def current(self) -> TurnState:
        """The state the machine is in."""
        return TurnState(self.state)

    def allowed(self) -> set[Trigger]:
        """Triggers the table accepts in the current state."""
        return {Trigger(name) for name in self._machine.get_triggers(self.state)}

    def fire(self, event: TurnEvent) -> bool:
        """Fire the event's trigger; False (and a warning in the log) when the table refuses it here."""
        before = self.current
        trigger = event.trigger
        try:
            self._machine.events[trigger.value].trigger(self, event=event)
        except MachineError:
            self.refused.append((before, trigger))
            self.refused_count += 1
            log.warning("refused trigger %r in state %r", trigger.value, before.value)
            return False
        return True

    def _entered(self, data: EventData) -> None:
        state = self.current
        self.previous = self.visited[-1]
        self.visited.append(state)
        self._on_any_enter(state)
        callback = self._on_enter.get(state)
        if callback is not None:
            callback(_event(data))

    def _settle_after_reset(self, data: EventData) -> None:
        self.fire(Settle())

    def _note_turn_start(self, data: EventData) -> None:
        event = _event(data)
        self.turn_over = not isinstance(event, UtteranceEnded) or event.final

    def _note_turn_over(self, data: EventData) -> None:
        self.turn_over = True
        self._on_turn_over(_event(data))


def mermaid_diagram() -> str:
    """The state diagram drawn by transitions' GraphMachine (mermaid engine) from the same table."""
    from transitions.extensions import GraphMachine

    def label(row: dict[str, Any]) -> dict[str, Any]:
        # Guards are functions; the diagram shows their names, like `[_has_words]`.
        plain = dict(row)
        for key in ("conditions", "unless"):
            if callable(plain.get(key)):
                plain[key] = plain[key].__name__.lstrip("_")
            elif isinstance(plain.get(key), list):
                plain[key] = [guard.__name__.lstrip("_") for guard in plain[key]]
        plain.pop("after", None)
        plain.pop("before", None)
        return plain

    graph = GraphMachine(
        states=[state.value for state in TurnState],
        transitions=[label(row) for row in _plain(TRANSITIONS)],
        initial=TurnState.IDLE.value,
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        title="Turn state machine",
    )
    source: str = graph.get_graph().draw(None)
    return source


def state_machine_page() -> str:
    """The page `docs/state-machine.md`: the table's diagram, written by `python -m machine diagram`."""
    return (
        "# The turn state machine\n\n"
        "Generated from `machine/fsm.py` by `python -m machine diagram > docs/state-machine.md`;\n"
        "a test keeps it in step with the table. Guards are shown in brackets; `reset` is allowed from\n"
        "every state and settles in `idle`, after which the runtime starts listening again.\n\n"
        f"```mermaid\n{mermaid_diagram().strip()}\n```\n"
    )
