"""What a user said about themselves, retold about them: "My cat is called Pickles" → "Their cat is called
Pickles". A small model told "my cat" in its prompt takes the cat for its own; told "their cat", it keeps
the user's facts the user's."""

from __future__ import annotations

import re

_FIRST_TO_THIRD = {
    "i": "they",
    "i'm": "they're",
    "i've": "they've",
    "i'll": "they'll",
    "i'd": "they'd",
    "me": "them",
    "my": "their",
    "mine": "theirs",
    "myself": "themselves",
    "am": "are",
    "was": "were",
    "we": "they",
    "we're": "they're",
    "we've": "they've",
    "our": "their",
    "ours": "theirs",
    "us": "them",
}
_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)?")


def third_person(text: str) -> str:
    """`text` with the speaker's first-person words (I, my, me, we, ...) as "they", "their", "them"; a
    word that started a sentence keeps its capital."""

    def retold(match: re.Match[str]) -> str:
        word = match.group()
        said = _FIRST_TO_THIRD.get(word.lower().replace("’", "'"))
        if said is None:
            return word
        starts = match.start() == 0 or text[: match.start()].rstrip()[-1:] in ".!?"
        return said.capitalize() if starts else said

    return _WORD.sub(retold, text)
