"""What a user said about themselves, retold: about them for the prompt's notes ("My cat is called Pickles"
→ "Their cat is called Pickles"), or to them when the bot answers from memory ("Your cat is called
Pickles"). A small model told "my cat" in its prompt takes the cat for its own; told "their cat", it keeps
the user's facts the user's."""

from __future__ import annotations

import re

_THIRD = {
    "i": "they",
    "i'm": "they're",
    "i've": "they've",
    "i'll": "they'll",
    "i'd": "they'd",
    "me": "them",
    "my": "their",
    "mine": "theirs",
    "myself": "themselves",
    "we": "they",
    "we're": "they're",
    "we've": "they've",
    "we'll": "they'll",
    "our": "their",
    "ours": "theirs",
    "us": "them",
    "ourselves": "themselves",
}
_SECOND = {
    "i": "you",
    "i'm": "you're",
    "i've": "you've",
    "i'll": "you'll",
    "i'd": "you'd",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "we": "you",
    "we're": "you're",
    "we've": "you've",
    "we'll": "you'll",
    "our": "your",
    "ours": "yours",
    "us": "you",
    "ourselves": "yourselves",
    "you": "me",  # what the user said to the bot, said back by the bot
    "your": "my",
    "yours": "mine",
}
_VERB_AFTER_I = {"am": "are", "was": "were"}
""""I am", "I was": the verb changes with the pronoun ("it was" stays)."""
_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)?")


def third_person(text: str) -> str:
    """`text` with the speaker's first-person words (I, my, me, we, ...) as "they", "their", "them"; a
    word that started a sentence keeps its capital."""
    return _retold(text, _THIRD)


def second_person(text: str) -> str:
    """`text` said back to its speaker: "I", "my", "we" become "you", "your", and what they called "you"
    (the bot) becomes "me"; a word that started a sentence keeps its capital."""
    return _retold(text, _SECOND)


def _retold(text: str, pronouns: dict[str, str]) -> str:
    previous = [""]

    def retold(match: re.Match[str]) -> str:
        word = match.group()
        key = word.lower().replace("’", "'")
        said = pronouns.get(key)
        if said is None and previous[0] == "i":
            said = _VERB_AFTER_I.get(key)
        previous[0] = key
        if said is None:
            return word
        starts = match.start() == 0 or text[: match.start()].rstrip()[-1:] in ".!?"
        return said.capitalize() if starts else said

    return _WORD.sub(retold, text)
