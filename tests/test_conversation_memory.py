"""The runtime's prompts come from InfiniMemory: the recent window plus recollections, on real embeddings."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_fakes import make_thinker

from machine.backends.infinimemory import BlockMemory, open_memory
from machine.ports import ChatMessage, MemoryContext, ReplyStream, Sampling
from machine.reply.retelling import third_person
from memory_store import MemoryStoreSettings

pytestmark = pytest.mark.models

EXCHANGES = [
    ("What's your favourite colour?", "I like deep ocean blue the most."),
    ("Do you like music?", "Yes, mostly lo-fi beats and some jazz piano."),
    ("I adopted a kitten called Miso last week.", "A kitten named Miso! Cats are wonderful companions."),
    ("Which world should we visit next?", "Let's try the rooftop cafe world, it has a great view."),
    ("I'm studying for my chemistry exam.", "Good luck! Balancing redox equations takes practice."),
    ("Have you ever seen snow?", "Only in pictures, but snowy mountains look beautiful."),
    ("My bike got a flat tire today.", "Oh no, hope you can patch the inner tube easily."),
    ("Can you recommend a good book?", "The Hobbit is a cozy adventure worth reading."),
    ("I'm learning to play the guitar.", "Start with simple chords like G, C and D."),
    ("Do you play any video games?", "I enjoy puzzle games and rhythm games."),
]


class EchoChat:
    """Records the prompt; replies with one fixed sentence."""

    def __init__(self) -> None:
        self.prompts: list[list[ChatMessage]] = []

    def stream(self, messages: list[ChatMessage], cancel: threading.Event, sampling: Sampling) -> ReplyStream:
        self.prompts.append(messages)
        yield "Sure thing. "
        return False  # not cut at the token limit

    def count_tokens(self, messages: list[ChatMessage]) -> int:
        return sum(len(m.content.split()) for m in messages)


@pytest.fixture
def memory(memory_settings: MemoryStoreSettings, tmp_path: Path) -> Iterator[BlockMemory]:
    settings = memory_settings.model_copy(update={"path": tmp_path / "store"})
    with open_memory(settings, "testbot") as opened:
        yield opened


def test_prompt_holds_the_window_and_recalls_an_older_exchange_once(
    memory: BlockMemory, memory_settings: MemoryStoreSettings
) -> None:
    window = memory_settings.recall.window_size
    for question, answer in EXCHANGES:
        memory.remember(question, answer)
    chat = EchoChat()
    thinker = make_thinker(chat, memory, max_sentences=1, history="turns")
    assert list(thinker.sentences("How is my little cat Miso doing?", threading.Event())) == ["Sure thing."]

    system, *history, last = chat.prompts[0]
    assert system.role == "system" and system.content.startswith("You are Testy.")
    assert "Recollection" in system.content and "Miso" in system.content
    assert last.content == "How is my little cat Miso doing?"
    questions = [m.content for m in history if m.role == "user"]
    assert questions == [q for q, _ in EXCHANGES[-window:]], "the recent window, oldest first"
    assert not any("Miso" in m.content for m in history), "a recalled memory is not shown twice"


def test_notes_hold_what_the_user_stated_in_the_window_and_the_recalled_exchange_once(
    memory: BlockMemory, memory_settings: MemoryStoreSettings
) -> None:
    """`history: notes` (the default): the user's statements from the recalled exchange and the window,
    retold about them, in the system message; their questions and the bot's replies are left out."""
    window = memory_settings.recall.window_size
    for question, answer in EXCHANGES:
        memory.remember(question, answer)
    chat = EchoChat()
    thinker = make_thinker(chat, memory, max_sentences=1)
    assert list(thinker.sentences("How is my little cat Miso doing?", threading.Event())) == ["Sure thing."]

    system, last = chat.prompts[0]
    assert last.content == "How is my little cat Miso doing?"
    notes = system.content.splitlines()
    assert notes.count("- They adopted a kitten called Miso last week.") == 1, "recalled, once"
    stated = [q for q, _ in EXCHANGES[-window:] if not q.endswith("?")]
    assert notes[-len(stated) :] == [f"- {third_person(q)}" for q in stated], "the window, oldest first"
    assert not any(a in system.content for _, a in EXCHANGES), "no reply of the bot's"


def test_forget_ends_the_session(memory: BlockMemory) -> None:
    memory.remember("My name is Alex.", "Nice to meet you, Alex.")
    assert memory.context("What is my name?").window
    memory.forget()
    assert memory.context("What is my name?") == MemoryContext()
