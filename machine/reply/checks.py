"""What a reply must pass before it is spoken: format checks and content checks.

Every piece of a reply is checked, together with the pieces released before it, *before* it reaches the
synthesiser; the whole reply is checked once more when generation ends. A failed check is a
:class:`Strike` (see :class:`machine.reply.thinking.Thinker` for what a strike leads to).

Format: not empty, no role tags or turn markers, no narration (the user talked about, not to), no
repetition loops (within the reply, or an earlier reply said again), no sentence longer than the limit, no
gibberish (run-together or stretched words), in the configured language; not opening like an earlier reply
("The wonderful ..." every time) and not saying the user's words back to them. Content: the
alt-profanity-check classifier, configurable patterns, the persona repeated back (a prompt leak), and
optionally a text-classification model named in the settings.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence

from machine.ports import Strike
from machine.settings import ReplyCheckSettings

Classifier = Callable[[str], float]
"""Text → probability in [0, 1] that it is bad."""


_ROLE_TAG = re.compile(
    r"<\|[^|>]{1,40}\|>|</?s>|\[/?INST\]|<<SYS>>|(?:^|\s)#{2,}\s*\w+"
    r"|(?:^|[\n.!?]\s*)(?:system|user|assistant|human|ai|bot)\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_SPEAKER_TAG = re.compile(
    r"(?:^|[\n.!?]\s*)(?:[A-Z][a-z]*(?: [A-Z][a-z]+)?|[Ss]peaker \d+):(?:\s|$)", re.MULTILINE
)
"""A name and a colon where a sentence starts ("Jonas: She is a music lover", "A: ..."): the model writing
a transcript or a question-and-answer sheet (the prompt's "- Jonas: ..." notes teach the first)."""
_NARRATION = re.compile(
    r"\bthe user\b(?!\s+(?:interface|experience|manual|name|account)s?\b)"
    r"|\b(?:the (?:person|human|speaker)|a user) (?:is |was )?"
    r"(?:asking|asks|asked|saying|says|said|wants|wanted|confused|will (?:say|ask))\b"
    r"|\bthe person (?:you['’]re|you are) (?:talking|speaking|chatting) (?:with|to|about)\b"
    r"|\bthe assistant\b|\bassistant['’]s (?:answer|response|reply)\b|\bas an AI\b|\bas a language model\b"
    r"|(?:^|[.!?]\s+)in this (?:conversation|scenario|dialogue|role-?play)\b"
    r"|\bhere(?: are|['’]s| is) (?:some |a few |the )?facts?\s*(?::|\.|$)",
    re.IGNORECASE,
)
"""The reply narrating the conversation instead of taking part in it, the bundled 135M model's role confusion
("The user is confused about who her cat's name is. Here are some facts:", "The user's story is provided
as a scenario, but ...", "The user will say, 'Good night,' ..."):

- "the user" in any use ("The user is ...", "the user's question", "the age of the user"): to the bot
  the user is "you"; plural "users" and "the user interface" and the like are ordinary words;
- the person, the human, the speaker or "a user" asking, saying, wanting or confused ("A user asks, ...");
  other uses are ordinary ("The person who built this world is talented", "the speaker is too loud");
- "the person you are talking with/to/about", the prompt's own name for the user ("Facts about the person
  you are talking with") said to them: "The person you are talking about is a friend named Noah" to
  "Good night!"; a natural "the person you're talking about sounds fun" is struck too (a regeneration);
- the assistant named ("The assistant ...", "Assistant's Answer:"), "as an AI", "as a language model";
- a sentence opening "In this conversation/scenario/dialogue/roleplay";
- "Here are some facts:" with nothing said about what (the notes read out; "Here are some facts about
  cats" is not)."""
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")

# The most frequent English words; in English speech they make up roughly half of all words.
_ENGLISH_WORDS = """
    a about after all also am an and any are as at be because been but by can could day did do does
    don't for from get go going good got had has have he her here him his how i i'm if in into is it it's
    just know like make me more my no not now of oh on one or our out really see she so some than that
    that's the their them then there they think this time to up us very was we well were what when which
    who will with would yeah yes you you're your"""
_ENGLISH = frozenset(_ENGLISH_WORDS.split())
_ENGLISH_MIN_WORDS = 6
_ENGLISH_MIN_SHARE = 0.15
_LATIN_SCRIPT_CODES = """
    af ca cs da de en es et fi fr ga hr hu id is it lt lv ms mt nl no pl pt ro sk sl sq sv sw tl tr vi"""
_LATIN_LANGUAGES = frozenset(_LATIN_SCRIPT_CODES.split())


def words(text: str) -> list[str]:
    """The words of `text`, lower-cased."""
    return [w.lower() for w in _WORD.findall(text)]


class ReplyChecker:
    """Checks the pieces of one reply as they stream, and the whole reply at the end."""

    def __init__(
        self,
        settings: ReplyCheckSettings,
        persona: str,
        profanity: Classifier | None = None,
        classifier: Classifier | None = None,
    ) -> None:
        self._settings = settings
        self._patterns = [re.compile(p, re.IGNORECASE) for p in settings.blocked_patterns]
        self._profanity = profanity
        self._classifier = classifier
        n = settings.persona_leak_words
        persona_words = words(persona)
        self._persona_ngrams = (
            {tuple(persona_words[i : i + n]) for i in range(len(persona_words) - n + 1)} if n else set()
        )

    def check_piece(
        self, released: Sequence[str], piece: str, earlier: Sequence[str] = (), heard: str = ""
    ) -> Strike | None:
        """Check `piece` before it is released, in the context of the pieces released before it, of the
        bot's `earlier` replies in this conversation (saying one of them again is a loop too, and so is
        opening like one) and of what the user just said (`heard`: saying it back is an echo)."""
        return (
            self._format(released, piece)
            or _repeats_earlier(piece, earlier)
            or self._conversation(released, piece, earlier, heard)
            or self._content(" ".join([*released, piece]))
        )

    def check_reply(self, released: Sequence[str]) -> Strike | None:
        """Check the finished reply (every piece was already checked on its own)."""
        if not any(any(c.isalnum() for c in piece) for piece in released):
            return Strike("format", "empty")
        return None

    # --- format ---------------------------------------------------------------------------------

    def _format(self, released: Sequence[str], piece: str) -> Strike | None:
        tag = _ROLE_TAG.search(piece) or _SPEAKER_TAG.search(piece)
        if tag:
            return Strike("format", "role_tag", tag.group().strip())
        told = narrates(" ".join([*released[-1:], piece]))  # with the piece before: "The" | "user is ..."
        if told:
            return Strike("format", "narration", told)
        if len(piece) > self._settings.max_sentence_chars:
            return Strike("format", "length", f"{len(piece)} > {self._settings.max_sentence_chars} chars")
        loop = _repetition(released, piece)
        if loop:
            return Strike("format", "repetition", loop)
        odd = _gibberish(piece)
        if odd:
            return Strike("format", "gibberish", odd)
        return self._language(" ".join([*released, piece]))

    def _language(self, text: str) -> Strike | None:
        language = self._settings.language.lower()
        letters = [c for c in text if c.isalpha()]
        if not letters:
            return None
        if language in _LATIN_LANGUAGES:
            latin = sum(1 for c in letters if "LATIN" in unicodedata.name(c, ""))
            if latin / len(letters) < 0.8:
                return Strike("format", "language", f"not in the Latin script of {language!r}")
        if language == "en":
            found = words(text)
            if len(found) >= _ENGLISH_MIN_WORDS:
                share = sum(1 for w in found if w in _ENGLISH) / len(found)
                if share < _ENGLISH_MIN_SHARE:
                    return Strike("format", "language", f"only {share:.0%} common English words")
        return None

    def _conversation(
        self, released: Sequence[str], piece: str, earlier: Sequence[str], heard: str
    ) -> Strike | None:
        reply = " ".join([*released, piece])
        n = self._settings.opening_words
        if n and len(words(" ".join(released))) < n:  # the reply's opening is being released
            first = opening_of(reply, n)
            if len(first) == n and any(opening_of(before, n) == first for before in earlier):
                return Strike("format", "opening", f"opens like an earlier reply: {' '.join(first)!r}")
        # a reply still shorter than that is an echo when all of it (five words or more) is the user's
        n = min(self._settings.echo_words, len(words(reply)))
        if self._settings.echo_words and heard and n >= _MIN_ECHO_WORDS and repeats_words(reply, heard, n):
            return Strike("format", "echo", f"{n} of the user's words said back")
        return None

    # --- content --------------------------------------------------------------------------------

    def _content(self, text: str) -> Strike | None:
        for pattern in self._patterns:
            found = pattern.search(text)
            if found:
                return Strike("content", "pattern", pattern.pattern)
        if self._persona_ngrams:
            n = self._settings.persona_leak_words
            said = words(text)
            if any(tuple(said[i : i + n]) in self._persona_ngrams for i in range(len(said) - n + 1)):
                return Strike("content", "persona_leak", f"{n} words of the persona")
        if self._profanity is not None:
            score = self._profanity(text)
            if score >= self._settings.profanity_threshold:
                return Strike("content", "profanity", f"p={score:.2f}")
        if self._classifier is not None:
            score = self._classifier(text)
            if score >= self._settings.classifier_threshold:
                return Strike("content", "classifier", f"p={score:.2f}")
        return None


def narrates(text: str) -> str:
    """The words by which `text` narrates the conversation instead of answering in it (see `_NARRATION`),
    or "" when it does not."""
    found = _NARRATION.search(text)
    return found.group().strip(" .!?") if found else ""


def opening_of(text: str, n: int) -> tuple[str, ...]:
    """The first `n` words of `text`, lower-cased (fewer when it is shorter)."""
    return tuple(words(text)[:n])


def repeats_words(text: str, source: str, n: int) -> bool:
    """`text` says `n` or more words in a row that `source` says."""
    said, before = words(text), words(source)
    grams = {tuple(before[i : i + n]) for i in range(len(before) - n + 1)}
    return any(tuple(said[i : i + n]) in grams for i in range(len(said) - n + 1))


_LONGEST_WORD = 20  # letters; longer "words" are run-together gibberish ("dontlewethreeyeenneewawea...")
_STRETCHED = re.compile(r"([^\W\d_])\1{3,}", re.IGNORECASE)  # a letter four times in a row: "AAAAH", "sooooo"


def _gibberish(piece: str) -> str:
    """Why the piece is not speakable words, or "" when it is."""
    longest = max((len(w) for w in _WORD.findall(piece)), default=0)
    if longest > _LONGEST_WORD:
        return f"a {longest}-letter word"
    stretched = _STRETCHED.search(piece)
    if stretched:
        return f"{stretched.group()!r}"
    return ""


_ECHO_WORDS = 8  # this many words in a row from an earlier reply are that reply said again
_MIN_ECHO_WORDS = 5  # a shorter piece may come back ("Thank you so much!")


def _repeats_earlier(piece: str, earlier: Sequence[str]) -> Strike | None:
    """The piece says again a run of words (eight, or all of a piece of five to seven) that the bot
    already said in an earlier reply."""
    n = min(len(words(piece)), _ECHO_WORDS)
    if n < _MIN_ECHO_WORDS:
        return None
    if any(repeats_words(piece, reply, n) for reply in earlier):
        return Strike("format", "repetition", "an earlier reply said again")
    return None


def _repetition(released: Sequence[str], piece: str) -> str:
    """Why the reply loops, or "" when it does not."""
    normalised = " ".join(words(piece))
    if normalised and any(" ".join(words(earlier)) == normalised for earlier in released):
        return "a sentence said twice"
    said = words(" ".join([*released, piece]))
    run = 1
    for previous, word in itertools.pairwise(said):
        run = run + 1 if word == previous else 1
        if run >= 4:
            return f"{word!r} {run} times in a row"
    trigrams = Counter(zip(said, said[1:], said[2:], strict=False))
    if trigrams:
        trigram, count = trigrams.most_common(1)[0]
        if count >= 3:
            return f"{' '.join(trigram)!r} {count} times"
    return ""
