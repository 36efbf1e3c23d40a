"""What may move the turn state machine: one trigger each, and one frozen event per trigger with what it
carries.

Hearing, the turn jobs, the audio source and signal handlers post these to the runtime's event queue; the
loop in :meth:`machine.runtime.Runtime.run` fires them, one at a time, and the table in
:mod:`machine.fsm` decides where they lead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from machine.ports import ChatboxMessage, Transcript, Utterance

__all__ = [
    "BargeIn",
    "ReplyStarted",
    "Reset",
    "Settle",
    "Spoken",
    "Start",
    "Stop",
    "Transcribed",
    "Trigger",
    "TurnConfirmed",
    "TurnEvent",
    "Typed",
    "UserResumed",
    "UtteranceEnded",
]


class Trigger(str, Enum):
    """Everything that may move the machine (the event classes below say what each carries)."""

    START = "start"
    UTTERANCE_ENDED = "utterance_ended"
    TYPED = "typed"
    TURN_CONFIRMED = "turn_confirmed"
    USER_RESUMED = "user_resumed"
    TRANSCRIBED = "transcribed"
    REPLY_STARTED = "reply_started"
    SPOKEN = "spoken"
    BARGE_IN = "barge_in"
    STOP = "stop"
    RESET = "reset"
    SETTLE = "settle"


@dataclass(frozen=True, kw_only=True)
class TurnEvent:
    """An event for the loop. `turn` names the turn it is about (0: not about one turn): an event about a
    turn that is no longer in flight is stale and dropped."""

    trigger: ClassVar[Trigger]
    turn: int = 0


@dataclass(frozen=True, kw_only=True)
class Start(TurnEvent):
    """Listen (from idle)."""

    trigger: ClassVar[Trigger] = Trigger.START


@dataclass(frozen=True, kw_only=True)
class UtteranceEnded(TurnEvent):
    """Hearing closed an utterance: a turn starts."""

    trigger: ClassVar[Trigger] = Trigger.UTTERANCE_ENDED
    utterance: Utterance
    final: bool = True
    """False: the speaker only paused, and the turn starts early (nothing is said until it is over)."""
    early_id: int = 0
    """Hearing's number for the utterance (0: none)."""


@dataclass(frozen=True, kw_only=True)
class Typed(TurnEvent):
    """A player's chatbox message was read on screen: a turn starts (its words are read, not heard: no
    transcription; who typed it is the name on their nameplate)."""

    trigger: ClassVar[Trigger] = Trigger.TYPED
    message: ChatboxMessage


@dataclass(frozen=True, kw_only=True)
class TurnConfirmed(TurnEvent):
    """The speaker's turn ended after the pause that started the turn in flight early: its work stands."""

    trigger: ClassVar[Trigger] = Trigger.TURN_CONFIRMED
    utterance: Utterance | None = None
    early_id: int = 0


@dataclass(frozen=True, kw_only=True)
class UserResumed(TurnEvent):
    """The speaker went on after the pause: the work started early is void."""

    trigger: ClassVar[Trigger] = Trigger.USER_RESUMED
    early_id: int = 0


@dataclass(frozen=True, kw_only=True)
class Transcribed(TurnEvent):
    """The turn's words, and whether the bot answers them (the reply policy's verdict)."""

    trigger: ClassVar[Trigger] = Trigger.TRANSCRIBED
    transcript: Transcript
    addressed: bool = True


@dataclass(frozen=True, kw_only=True)
class ReplyStarted(TurnEvent):
    """The reply's first sentence (None: there is no reply), already being synthesised."""

    trigger: ClassVar[Trigger] = Trigger.REPLY_STARTED
    reply: str | None


@dataclass(frozen=True, kw_only=True)
class Spoken(TurnEvent):
    """The reply has been played (or cut)."""

    trigger: ClassVar[Trigger] = Trigger.SPOKEN


@dataclass(frozen=True, kw_only=True)
class BargeIn(TurnEvent):
    """A user talked over the bot."""

    trigger: ClassVar[Trigger] = Trigger.BARGE_IN


@dataclass(frozen=True, kw_only=True)
class Stop(TurnEvent):
    """End the run (the turn in flight is abandoned)."""

    trigger: ClassVar[Trigger] = Trigger.STOP


@dataclass(frozen=True, kw_only=True)
class Reset(TurnEvent):
    """Abandon the turn in flight and go back to idle; with `forget`, once its jobs have ended, the
    conversation is forgotten too."""

    trigger: ClassVar[Trigger] = Trigger.RESET
    forget: Callable[[], None] | None = None


@dataclass(frozen=True, kw_only=True)
class Settle(TurnEvent):
    """From reset to idle (fired by the machine itself)."""

    trigger: ClassVar[Trigger] = Trigger.SETTLE
