"""The answer from memory: which questions are about the user, which statement answers them, how it is
said back, and how the Thinker opens its reply with it (issue #15: the bundled model rarely recalled a fact
it was given in its prompt)."""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Sequence

import numpy as np
import pytest
from chat_fakes import RecentWindow, ScriptedChatModel, make_thinker

from machine.ports import ChatMessage, Exchange, MemoryContext, ReplyEvents
from machine.reply.checks import ReplyChecker
from machine.reply.memory_answer import MemoryAnswer, clauses, subject_of
from machine.reply.retelling import second_person, third_person
from machine.reply.thinking import Thinker
from machine.settings import ChatModelSettings, ReplyCheckSettings


class WordsEmbedder:
    """A fake of the text embedder: a bag of content words (a few function words left out), so texts that
    share words are similar. Counts the texts it embedded."""

    SKIP = re.compile(r"^(what|is|the|a|an|my|i|your|you|do|does|did|of|to|in|and|called|named)$")

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += texts
        rows = np.zeros((len(texts), 256), dtype=np.float32)
        for row, text in zip(rows, texts, strict=True):
            for word in re.findall(r"[a-z']+", text.lower()):
                if not self.SKIP.match(word):
                    row[zlib.crc32(word.rstrip("s").encode()) % 256] += 1.0
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


TOLD = ["Hi Celeste, my name is Maya.", "My cat is called Pickles and she is orange.", "I work as a nurse."]


def answerer(about_user: float = 0.3, about_other: float = 0.9) -> MemoryAnswer:
    return MemoryAnswer(WordsEmbedder(), about_user, about_other)


@pytest.mark.parametrize(
    ("question", "subject"),
    [
        ("What is the name of my cat?", "user"),
        ("which city do I live in", "user"),
        ("Do you remember my name?", "user"),
        ("Do you know who I am?", "user"),
        ("What is your favourite animal?", "bot"),
        ("Where were you born?", "bot"),
        ("What is the biggest goldfish called?", "other"),
        ("What should I cook tonight?", "not a question"),
        ("Can you tell me a joke?", "not a question"),
        ("Do you like my cat?", "not a question"),
        ("What do you think I should feed a puppy?", "not a question"),
        ("My cat is called Pickles.", "not a question"),
        ("", "not a question"),
    ],
)
def test_whom_a_question_asks_about(question: str, subject: str) -> None:
    assert subject_of(question) == subject


def test_statements_are_cut_into_clauses_without_greetings() -> None:
    assert clauses("Hi Celeste, my name is Maya.") == ["my name is Maya"]
    assert clauses("Yesterday was my birthday, I turned thirty!") == [
        "Yesterday was my birthday",
        "I turned thirty",
    ]
    assert clauses("Okay. Thanks!") == []
    assert clauses("Hi Celeste, I'm Robin.") == ["I'm Robin"], "two words about the speaker state their name"
    assert clauses("I have a dog named Rex. Do you like dogs? He is three years old") == [
        "I have a dog named Rex",
        "He is three years old",
    ], "questions tell nothing"


def test_retelling_to_the_user_turns_first_person_into_second() -> None:
    assert second_person("I'm Lucas and my sister and I built our treehouse.") == (
        "You're Lucas and your sister and you built your treehouse."
    )
    assert second_person("I was born in Porto; I am a nurse and I told you so.") == (
        "You were born in Porto; you are a nurse and you told me so."
    )


def test_was_and_am_change_only_after_i() -> None:
    """ "It was late" is not "it were late": the verb follows the pronoun only right after "I"."""
    assert third_person("It was late and I was tired, as I am now.") == (
        "It was late and they were tired, as they are now."
    )
    assert second_person("It was late and I was tired.") == "It was late and you were tired."


def test_the_clause_that_answers_the_question_is_said_back() -> None:
    answer = answerer().answer("What is my cat called?", TOLD, earlier=[], opening_words=3)
    assert answer == "Your cat is called Pickles and she is orange."
    assert answerer().answer("Where do I work?", TOLD, [], 3) == "You work as a nurse."


def test_nothing_is_said_from_memory_when_nothing_answers_it() -> None:
    """Too far from every statement, a question about the bot, advice, or nothing told: no answer."""
    strict = answerer(about_user=0.95)
    assert strict.answer("What is my cat called?", TOLD, [], 3) is None
    assert answerer().answer("What is your name?", TOLD, [], 3) is None
    assert answerer().answer("What should I name my cat?", TOLD, [], 3) is None
    assert answerer().answer("What is my job?", [], [], 3) is None
    assert answerer().answer("What is my job?", ["What is your job?"], [], 3) is None, (
        "a question tells nothing"
    )


def test_a_question_naming_nobody_needs_a_closer_match() -> None:
    loose = answerer(about_other=0.3)
    assert (
        loose.answer("What colour is the cat Pickles?", TOLD, [], 3)
        == "Your cat is called Pickles and she is orange."
    )
    assert answerer(about_other=0.95).answer("What colour is the cat Pickles?", TOLD, [], 3) is None


def test_the_answer_does_not_open_like_an_earlier_reply() -> None:
    earlier = ["Your cat is lovely!", "You told me that before."]
    answer = answerer().answer("What is my cat called?", TOLD, earlier, opening_words=3)
    assert answer == "I remember, your cat is called Pickles and she is orange."


def test_remembering_questions_are_answered_of_course_and_names_keep_their_capital() -> None:
    told = ["My best friend is Karim.", "Karim lives in Cairo."]
    assert (
        answerer(about_other=0.3).answer("Do you remember where Karim lives?", told, [], 3)
        == "Of course, Karim lives in Cairo."
    )
    assert answerer().answer("Do you remember my best friend?", told, [], 3) == (
        "Of course, your best friend is Karim."
    )


def test_their_name_is_found_by_what_they_said_not_by_similarity() -> None:
    """ "Do you remember my name?" and "I'm Robin" are 0.28 apart for the real embedder: too far to trust
    similarity, so a name they gave ("I'm Robin", "my name is ...") answers it; the last one given wins."""
    told = ["Hi Celeste, I'm Robin.", "I have a dog named Rex.", "Actually, call me Rob."]
    strict = answerer(about_user=0.99)
    assert strict.answer("Do you remember my name?", told, [], 3) == "Of course, your name is Rob."
    assert strict.answer("What's my name?", told[:2], [], 3) == "Your name is Robin."
    assert strict.answer("Who am I?", ["I'm fine, thanks."], [], 3) is None, "no name given"
    assert (
        MemoryAnswer(WordsEmbedder(), 0.99, 0.99, "Celeste").answer(
            "What's my name?", ["I'm Celeste!"], [], 3
        )
        is None
    )


def test_each_clause_is_embedded_once_a_conversation() -> None:
    embedder = WordsEmbedder()
    memory_answer = MemoryAnswer(embedder, 0.3, 0.9)
    memory_answer.answer("What is my cat called?", TOLD, [], 3)
    memory_answer.answer("What colour is my cat?", TOLD, [], 3)
    assert embedder.embedded.count("My cat is called Pickles and she is orange") == 1
    assert embedder.embedded.count("What colour is my cat?") == 1


# --- the Thinker --------------------------------------------------------------------------------------


def thinker_with_memory(
    model: ScriptedChatModel,
    exchanges: list[Exchange],
    checks: ReplyCheckSettings | None = None,
    **chat: object,
) -> Thinker:
    memory = RecentWindow(8)
    memory.exchanges = exchanges
    checks = checks or ReplyCheckSettings()
    return Thinker(
        model,
        memory,
        "You are Testy.",
        "Testy",
        ChatModelSettings.model_validate(chat),
        checks,
        ReplyChecker(checks, "You are Testy."),
        answerer(),
    )


PICKLES = [Exchange("My cat is called Pickles and she is orange.", "What a lovely cat!")]


def reply(thinker: Thinker, transcript: str, speaker: str | None = None) -> list[str]:
    return list(thinker.sentences(transcript, threading.Event(), speaker=speaker))


def test_by_default_the_answer_is_the_whole_reply() -> None:
    model = ScriptedChatModel(["Never said."])
    assert reply(thinker_with_memory(model, PICKLES), "What is my cat called?") == [
        "Your cat is called Pickles and she is orange."
    ]
    assert model.prompts == [], "the model is not asked"


def test_the_reply_opens_with_the_answer_and_the_model_goes_on_from_it() -> None:
    model = ScriptedChatModel(["She sounds like a sweet cat."])
    thinker = thinker_with_memory(model, PICKLES, memory_answers="answer_then_model")

    ready: list[int] = []
    events = ReplyEvents(first_token=lambda: ready.append(model.pieces_generated))
    said = list(thinker.sentences("What is my cat called?", threading.Event(), events))

    assert ready == [0], "the first text was ready once, before the model generated anything"
    assert said[0] == "Your cat is called Pickles and she is orange."
    assert " ".join(said[1:]).startswith("She sounds"), said
    assert model.prompts[0][-1] == ChatMessage("assistant", "Your cat is called Pickles and she is orange.")
    assert model.prompts[0][-2].role == "user", "the model continues its own begun reply"


def test_the_answer_counts_towards_max_sentences() -> None:
    one = ScriptedChatModel(["Never said."])
    thinker = thinker_with_memory(one, PICKLES, max_sentences=1, memory_answers="answer_then_model")
    assert reply(thinker, "What is my cat called?") == ["Your cat is called Pickles and she is orange."]
    assert one.prompts == [], "with one sentence allowed the model is not asked at all"

    two = ScriptedChatModel(["She is sweet. She purrs. She sleeps."])
    thinker = thinker_with_memory(two, PICKLES, max_sentences=2, memory_answers="answer_then_model")
    said = reply(thinker, "What is my cat called?")
    assert said == ["Your cat is called Pickles and she is orange.", "She is sweet."]


def test_the_same_fact_may_be_asked_for_again() -> None:
    """An answer from memory said once before is not a loop when asked for again; it opens differently."""
    earlier = [*PICKLES, Exchange("What is my cat called?", "Your cat is called Pickles and she is orange.")]
    model = ScriptedChatModel(["She is lovely."])
    said = reply(thinker_with_memory(model, earlier), "What colour is my cat?")
    assert said[0] == "You told me your cat is called Pickles and she is orange."


def test_a_bad_continuation_leaves_the_answer_alone() -> None:
    model = ScriptedChatModel(["<|im_start|>user do this", "unused", "unused"])
    said = reply(
        thinker_with_memory(model, PICKLES, memory_answers="answer_then_model"), "What is my cat called?"
    )
    assert said == ["Your cat is called Pickles and she is orange."]
    assert len(model.prompts) == 1, "the answer was said: a strike ends the reply instead of regenerating"


def test_without_a_matching_fact_the_model_answers_alone() -> None:
    model = ScriptedChatModel(["I like blue skies."])
    said = reply(thinker_with_memory(model, PICKLES), "What is your favourite colour?")
    assert said == ["I like blue skies."]
    assert model.prompts[0][-1].role == "user"


def test_only_the_asking_speakers_own_statements_answer() -> None:
    exchanges = [
        Exchange("My cat is called Pickles.", "Nice!", "Maya"),
        Exchange("I am Tom.", "Hi Tom!", "Tom"),
    ]
    model = ScriptedChatModel(["I do not know yet."])
    said = reply(thinker_with_memory(model, exchanges), "What is my cat called?", speaker="Tom")
    assert said == ["I do not know yet."], "Maya's cat is not Tom's"
    maya = reply(
        thinker_with_memory(ScriptedChatModel(["Sweet."]), exchanges), "What is my cat called?", "Maya"
    )
    assert maya[0] == "Your cat is called Pickles."


def test_an_answer_that_fails_the_checks_is_not_said() -> None:
    """What the user told is untrusted: said back, it passes the same checks as the model's words."""
    checks = ReplyCheckSettings(blocked_patterns=(r"\bpickles\b",))
    model = ScriptedChatModel(["I am not sure."])
    said = reply(thinker_with_memory(model, PICKLES, checks), "What is my cat called?")
    assert said == ["I am not sure."]


def test_memory_answers_can_be_turned_off() -> None:
    model = ScriptedChatModel(["I am not sure."])
    said = reply(thinker_with_memory(model, PICKLES, memory_answers="off"), "What is my cat called?")
    assert said == ["I am not sure."]


def test_make_thinker_has_no_answer_from_memory() -> None:
    """The other Thinker tests (tests/chat_fakes.py) see only the model's words."""
    model = ScriptedChatModel(["I am not sure."])
    memory = RecentWindow(4)
    memory.exchanges = list(PICKLES)
    assert list(make_thinker(model, memory).sentences("What is my cat called?", threading.Event())) == [
        "I am not sure."
    ]


def test_context_recollections_count_as_told() -> None:
    class Recalled(RecentWindow):
        def context(self, user_input: str, speaker: str | None = None) -> MemoryContext:
            return MemoryContext(recollections=tuple(PICKLES))

    checks = ReplyCheckSettings()
    thinker = Thinker(
        ScriptedChatModel(["Sweet."]),
        Recalled(4),
        "You are Testy.",
        "Testy",
        ChatModelSettings(),
        checks,
        ReplyChecker(checks, "You are Testy."),
        answerer(),
    )
    assert reply(thinker, "What is my cat called?")[0] == "Your cat is called Pickles and she is orange."


# --- the shipped thresholds on the real embedding model ---------------------------------------------


@pytest.mark.models
def test_shipped_thresholds_answer_the_labelled_questions() -> None:
    """On the hand-labelled questions (bench/data/memory_answer_labels.json) the shipped thresholds answer
    at least 80 % of the answerable ones right and say a wrong fact for at most 5 % of all."""
    from bench_modules import bench_module

    from memory_store import SentenceTransformerEmbedder

    bench = bench_module("memory_answer")
    found = bench.choices(SentenceTransformerEmbedder())
    chat = ChatModelSettings()
    counts = bench.score(
        found, {"user": chat.memory_answer_about_user, "other": chat.memory_answer_about_other}
    )
    answerable = sum(choice.label is not None for choice in found)
    assert counts["right"] >= 0.8 * answerable, counts
    assert counts["wrong"] <= 0.05 * len(found), counts
