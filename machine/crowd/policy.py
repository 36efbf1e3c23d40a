"""Whom the bot answers, in a crowd (`machine.reply_policy.policy`):

- `always`: every utterance with words (one person and the bot; the default);
- `addressed`: an utterance that says the bot's name (or an alias, allowing for whisper's spellings of it:
  a word within `name_similarity` of it), or that comes from the speaker the bot last answered within
  `follow_up_s` of its reply, before anyone else spoke ("Celeste, do you like music?" … "And dogs?"; once
  another player talks, the conversation has moved on);
- `main_speaker`: like `addressed`, and the last speaker who said the name holds the floor: they are
  answered without it until someone else says the name.

Without speaker identification (`machine.speakers.enabled: false`) every voice counts as the same speaker.
Unaddressed speech gets no reply; it still extends the session.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from itertools import pairwise

from machine.settings import ReplyPolicySettings

__all__ = ["ReplyPolicy", "says_name"]

_WORD = re.compile(r"[a-z]+")


def says_name(transcript: str, names: list[str], similarity: float) -> bool:
    """Whether `transcript` says one of `names`: a word, or two words run together ("Sell Est"), within
    `similarity` (difflib's ratio) of it."""
    words = _WORD.findall(transcript.lower())
    candidates = words + [a + b for a, b in pairwise(words)]
    wanted = [name.lower() for name in names if name.strip()]
    return any(
        SequenceMatcher(None, word, name).ratio() >= similarity
        for word in candidates
        for name in wanted
        if abs(len(word) - len(name)) <= 3
    )


class ReplyPolicy:
    """Decides, per transcript, whether the bot answers; told when it answered."""

    def __init__(self, settings: ReplyPolicySettings, bot_name: str) -> None:
        self._settings = settings
        self._names = [bot_name, *settings.aliases]
        self._answered: str | None = None
        self._answered_at = float("-inf")
        self._floor: str | None = None

    def addressed(self, transcript: str, speaker: str, now: float, learn: bool = True) -> bool:
        """Whether the bot should answer `speaker` saying `transcript` at monotonic time `now`; with
        `learn` off, who holds the floor and whether a follow-up is open stay as they are."""
        policy = self._settings.policy
        if policy == "always":
            return True
        if says_name(transcript, self._names, self._settings.name_similarity):
            if learn:
                self._floor = speaker
            return True
        if policy == "main_speaker" and speaker == self._floor:
            return True
        if speaker != self._answered:
            if learn:
                self._answered = None  # someone else spoke: no follow-up any more
            return False
        return now - self._answered_at <= self._settings.follow_up_s

    def answered(self, speaker: str, now: float) -> None:
        """The bot finished answering `speaker` at `now` (the follow-up window starts)."""
        self._answered, self._answered_at = speaker, now

    def forget(self) -> None:
        """A new session: nobody holds the floor."""
        self._answered, self._answered_at, self._floor = None, float("-inf"), None
