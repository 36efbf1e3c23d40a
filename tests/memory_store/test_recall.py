"""The recent window and recall, on real all-MiniLM-L6-v2 embeddings and a real embedded Chroma."""

from __future__ import annotations

import pytest
from memory_fakes import OpenSystem
from memory_topics import THIRD_TOPIC_QUESTION, TOPICS

from memory_store import MemoryBlock, SentenceTransformerEmbedder
from memory_store.chroma.block_records import seq_of

pytestmark = pytest.mark.models

WINDOW = 6
UNRELATED = "Shall we dance at the club tonight?"


def talk(block: MemoryBlock, exchanges: list[tuple[str, str]]) -> None:
    for question, answer in exchanges:
        block.remember(question, answer, speaker="Alex")


def test_after_twenty_topics_the_third_is_recalled_and_not_shown_twice(
    open_system: OpenSystem, minilm: SentenceTransformerEmbedder
) -> None:
    block = open_system(minilm, recall={"window_size": WINDOW}).block("celeste")
    talk(block, TOPICS)

    context = block.context(THIRD_TOPIC_QUESTION)

    assert [m.question for m in context.recollections] == [TOPICS[2][0]]
    assert [m.question for m in context.window] == [q for q, _ in TOPICS[-WINDOW:]]
    shown = [m.id for m in (*context.recollections, *context.window)]
    assert len(shown) == len(set(shown))
    assert context.recollections[0].speaker == "Alex"


def test_a_memory_inside_the_window_stays_history_and_is_not_recalled(
    open_system: OpenSystem, minilm: SentenceTransformerEmbedder
) -> None:
    block = open_system(minilm, recall={"window_size": WINDOW}).block("celeste")
    talk(block, TOPICS)

    context = block.context("My laptop is overheating again, what should I clean?")

    assert TOPICS[-1][0] in [m.question for m in context.window]
    assert TOPICS[-1][0] not in [m.question for m in context.recollections]


def test_a_recalled_memory_keeps_its_place_and_can_be_recalled_again(
    open_system: OpenSystem, minilm: SentenceTransformerEmbedder
) -> None:
    block = open_system(minilm, recall={"window_size": WINDOW}).block("celeste")
    talk(block, TOPICS)
    recalled = block.context(THIRD_TOPIC_QUESTION).recollections[0]
    block.remember(THIRD_TOPIC_QUESTION, "Miso is curious and loves naps.")

    later = block.context(UNRELATED)
    again = block.context("Remember my kitten Miso?")

    assert recalled not in later.recollections and recalled not in later.window
    assert again.recollections[0] == recalled
    assert block.remember("one more", "exchange") is not None
    last = block.remember("one more", "exchange")
    assert last is not None and seq_of(last.id) == len(TOPICS) + 2  # nothing was copied


def test_two_bots_never_recall_each_others_memories(
    open_system: OpenSystem, minilm: SentenceTransformerEmbedder
) -> None:
    system = open_system(minilm, recall={"window_size": 2})
    celeste, nova = system.block("celeste"), system.block("nova")
    talk(celeste, TOPICS[:10])
    talk(nova, TOPICS[10:])

    about_miso = [nova.context(THIRD_TOPIC_QUESTION), celeste.context(THIRD_TOPIC_QUESTION)]
    japan = "Do you remember my trip to Japan and the ramen?"
    about_japan = [celeste.context(japan), nova.context(japan)]

    celeste_said, nova_said = {q for q, _ in TOPICS[:10]}, {q for q, _ in TOPICS[10:]}
    assert {m.question for m in about_miso[0].recollections} <= nova_said
    assert about_miso[1].recollections[0].question == TOPICS[2][0]
    assert {m.question for m in about_japan[0].recollections} <= celeste_said
    assert about_japan[1].recollections[0].question == TOPICS[11][0]
    assert {m.question for m in celeste.context(UNRELATED).window} <= {q for q, _ in TOPICS[:10]}


def test_memories_and_recall_survive_reopening_the_store(
    open_system: OpenSystem, minilm: SentenceTransformerEmbedder
) -> None:
    first = open_system(minilm, recall={"window_size": WINDOW})
    talk(first.block("celeste"), TOPICS)
    window_before = first.block("celeste").context(UNRELATED).window
    first.close()

    block = open_system(minilm, recall={"window_size": WINDOW}).block("celeste")
    context = block.context(THIRD_TOPIC_QUESTION)

    assert context.window == window_before
    assert [m.question for m in context.recollections] == [TOPICS[2][0]]
