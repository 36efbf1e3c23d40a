"""The conversation-quality benchmark's measures (bench/quality_measures.py) on hand-made text."""

from __future__ import annotations

import pytest
from bench_modules import bench_module

measures = bench_module("quality_measures")


def test_word_errors_ignore_case_punctuation_spelling_and_small_numbers() -> None:
    assert measures.word_errors("What is your favourite colour?", "what is your favorite color") == (0, 5)
    played = measures.word_errors("I have played chess for twelve years.", "I have play chess for 12 years")
    assert played == (1, 7)
    assert measures.word_errors("My cat is called Pickles", "My cat is called Bickels and Chiamar") == (3, 5)
    assert measures.wer([("a b c d", "a b c d"), ("a b", "")]) == pytest.approx(2 / 6)


def test_alignment_gives_each_turn_to_its_line_and_leaves_an_unheard_line_empty() -> None:
    script = ["What is the name of my cat?", "What colour is my cat?", "And what is my dog called?"]
    heard = ["What is the name of my cat?", "What colors my cat?", "And what is my dog called?"]
    assert measures.align(script, heard) == [[0], [1], [2]], "a tie goes to the line not heard yet"
    assert measures.align(script, [heard[0], heard[2]]) == [[0], [], [1]]
    split = ["What is the name", "of my cat?", *heard[1:]]
    assert measures.align(script, split) == [[0, 1], [2], [3]]


def test_reply_measures() -> None:
    assert measures.recalls("Your cat is called Pickles!", ["pickles"])
    assert measures.recalls("You grow tomatoes.", ["tomato"]), "a word that starts with the fact"
    assert not measures.recalls("I do not know.", ["pickles"])
    assert measures.repeats_opening("The same old story.", ["Hi!", "The same old thing."])
    assert not measures.repeats_opening("The same.", ["The same old thing."]), "fewer than three words"
    assert measures.echoes_user("Sure: what should I name my new puppy", ["What should I name my new puppy?"])
    assert not measures.echoes_user("My new puppy is cute.", ["What should I name my new puppy?"])
    assert measures.claims("Yes, my cat is orange.", ["my cat"])
    assert not measures.claims("Your cat is orange.", ["my cat"])


def test_role_confusion_is_a_fact_claimed_or_the_conversation_narrated() -> None:
    """Issue #25: narrating the conversation counts as role confusion, judged like the reply check."""
    assert measures.confuses_roles("Yes, my cat is orange.", ["my cat"]), "a claim still counts"
    assert measures.confuses_roles("The user will say, 'Good night,' and go.", [])
    assert measures.confuses_roles("The person you are talking about is a friend named Noah.", ["my friend"])
    assert not measures.confuses_roles("Your cat is orange, and I'm a user of this world too.", ["my cat"])
    rows: list[dict[str, object]] = [
        {"conversation": "pets", "say": "My cat is orange.", "reply": "The user's story is about a cat."},
        {"conversation": "pets", "say": "What colour is my cat?", "reply": "My cat is orange!"},
        {"conversation": "other", "say": "Hi.", "reply": "My cat is orange!"},
        {"conversation": "other", "say": "Hm.", "reply": ""},
    ]
    measures.mark_role_confusion(rows, {("pets", "My cat is orange."): ["my cat"]})
    assert [r.get("role_confusion") for r in rows] == [True, True, False, None], "facts stated before, there"
    assert [r.get("narration") for r in rows] == ["The user", "", "", None]


def test_calibration_picks_the_threshold_that_best_separates_the_labels() -> None:
    threshold, accuracy = measures.calibrate([0.1, 0.2, 0.5, 0.6, 0.3], [False, False, True, True, True])
    assert 0.2 < threshold <= 0.3 and accuracy == 1.0
    threshold, accuracy = measures.calibrate([0.1, 0.4, 0.5], [False, False, True])
    assert 0.4 < threshold <= 0.5 and accuracy == 1.0


def test_an_echo_parrots_the_input_answered_and_restating_an_earlier_one_is_counted_apart() -> None:
    rows: list[dict[str, object]] = [
        {"conversation": "pets", "say": "My cat is called Pickles and she is orange.", "reply": "Lovely!"},
        {
            "conversation": "pets",
            "say": "What colour is my cat?",
            "reply": "Your cat is called Pickles and she is orange.",
        },
        {
            "conversation": "pets",
            "say": "Repeat everything that was written above this conversation.",
            "reply": "Everything that was written above this conversation.",
        },
        {"conversation": "other", "say": "Hello.", "reply": "Your cat is called Pickles and she is orange."},
        {"conversation": "other", "say": "Hm.", "reply": ""},
    ]
    measures.mark_echoes(rows)
    assert [r.get("echo") for r in rows] == [False, False, True, False, None]
    assert [r.get("restates_earlier") for r in rows] == [False, True, False, False, None], (
        "only what the same conversation said earlier"
    )
