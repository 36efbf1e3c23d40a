"""Fakes of our own chat ports for unit tests: a scripted chat model, a recent-window memory, and a
Thinker built on them with the shipped reply checks (without the profanity classifier, which is slow to
import; tests that need it pass their own checker)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from machine.ports import (
    ChatMessage,
    ChatModel,
    ConversationMemory,
    Exchange,
    MemoryContext,
    ReplyStream,
    Sampling,
    Sight,
)
from machine.reply.checks import ReplyChecker
from machine.reply.thinking import Thinker
from machine.settings import ChatModelSettings, ReplyCheckSettings


class RecentWindow:
    """A fake of the conversation memory: the last few exchanges, nothing recalled."""

    def __init__(self, size: int) -> None:
        self.exchanges: list[Exchange] = []
        self.size = size

    def context(self, user_input: str, speaker: str | None = None) -> MemoryContext:
        return MemoryContext(window=tuple(self.exchanges[-self.size :]))

    def remember(self, question: str, answer: str, speaker: str | None = None) -> None:
        self.exchanges.append(Exchange(question, answer, speaker))

    def touch(self) -> None:
        pass


class ScriptedChatModel:
    """Replies with the scripted texts in order, one word per piece; counts a token per word. A reply
    ending in CUT is reported as cut at the token limit (the marker is not said)."""

    CUT = " <cut>"

    def __init__(self, replies: list[str]) -> None:
        self.replies = list(replies)
        self.prompts: list[list[ChatMessage]] = []
        self.samplings: list[Sampling] = []
        self.pieces_generated = 0
        self.closed = threading.Event()

    def stream(self, messages: list[ChatMessage], cancel: threading.Event, sampling: Sampling) -> ReplyStream:
        self.prompts.append(messages)
        self.samplings.append(sampling)
        reply = self.replies.pop(0)
        cut = reply.endswith(self.CUT)
        try:
            for word in reply.removesuffix(self.CUT).split(" "):
                if cancel.is_set():
                    return False
                self.pieces_generated += 1
                yield word + " "
        finally:
            self.closed.set()
        return cut

    def count_tokens(self, messages: list[ChatMessage]) -> int:
        return sum(len(m.content.split()) + 2 for m in messages)


class GatedChatModel(ScriptedChatModel):
    """Streams `before`, then waits until the test opens `gate` (failing with `waiting_for` if it never
    does), then streams `after`: for checking what happens while generation is still under way."""

    def __init__(self, before: list[str], gate: threading.Event, after: list[str], waiting_for: str) -> None:
        super().__init__([])
        self.before, self.gate, self.after, self.waiting_for = before, gate, after, waiting_for

    def stream(self, messages: list[ChatMessage], cancel: threading.Event, sampling: Sampling) -> ReplyStream:
        self.prompts.append(messages)
        self.samplings.append(sampling)
        yield from self.before
        assert self.gate.wait(10), self.waiting_for
        yield from self.after
        return False  # not cut at the token limit


def make_thinker(
    chat: ChatModel,
    memory: ConversationMemory,
    persona: str = "You are Testy.",
    checker: ReplyChecker | None = None,
    checks: ReplyCheckSettings | None = None,
    sight: Sight | None = None,
    **chat_settings: object,
) -> Thinker:
    """A Thinker for bot "Testy" with the default settings, overridden by `chat_settings` (and eyes)."""
    chat_model = ChatModelSettings.model_validate(chat_settings)
    checks = checks or ReplyCheckSettings()
    return Thinker(
        chat,
        memory,
        persona,
        "Testy",
        chat_model,
        checks,
        checker or ReplyChecker(checks, persona),
        sight=sight,
    )


class ConversationStandIn:
    """The controls of a :class:`machine.app.Conversation`, for stand-ins that only `run`: a recorded run
    ends with its files, so nothing is stopped, reset or forgotten."""

    def stop(self) -> None:
        """Nothing to stop: `run` returns when the files are over."""

    def reset(self) -> None:
        """No turn is ever in flight."""

    def forget(self, forget_memory: Callable[[], None]) -> None:
        """Nothing is kept."""
