"""Questions about what the bot sees, and what it says when it cannot tell.

"What do you see?", "Do you like my avatar?", "How do I look?": with a model that sees
(`machine.chat_model.sees_images`) and eyes (`machine.vision`), such a question is sent with the bot's
latest view. Without them the bot would only invent a scene, so it says what it cannot see instead (and,
with eyes, whose nameplates it can read). "Do you see what I mean?" is not such a question.
"""

from __future__ import annotations

import re

__all__ = ["asks_about_view", "cannot_see"]

_OBJECT = r"(?:me|my|this|that|it|us|him|her|them|the|our|his|their)"
_LOOKS = r"(?:avatar|outfit|look|hair|hat|clothes|dress|shirt|skin|model|ears|tail)"
_VIEW = re.compile(
    r"\b(?:"
    r"what (?:do|can) you see"
    r"|(?:can|do) you see " + _OBJECT + r"\b"
    r"|how do (?:i|we) look"
    r"|do you like (?:my|our|this|his|her|their) " + _LOOKS + r"\b"
    r"|what (?:am i|are we|is (?:he|she)|are they) wearing"
    r"|describe (?:the|this|what|my|your|it|him|her|them|our)\b"
    r"|look at " + _OBJECT + r"\b"
    r"|what does (?:my|this|that|the|his|her) \w+ look like"
    r"|what(?:'s| is) (?:around|behind|in front of|next to) (?:you|me|us)"
    r")",
    re.IGNORECASE,
)


def asks_about_view(text: str) -> bool:
    """Whether `text` asks the bot about what it sees."""
    return _VIEW.search(" ".join(text.replace("’", "'").split())) is not None


def cannot_see(has_eyes: bool, present: list[str]) -> str:
    """What the bot says to a question about its view when no model can look at it."""
    if not has_eyes:
        return "I can't see anything from here, so I won't guess what it looks like."
    line = "I can only read names and chat bubbles, not make out details, so I won't guess."
    if present:
        names = present[:4]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        line += f" I can see {listed} here, though."
    return line
