"""Names people give for themselves ("I'm Robin", "my name is Robin", "call me Robin").

Shared by whom-to-answer (a speaker is called by the name they give) and replying (a question about the
user's name is answered from it).
"""

from __future__ import annotations

import re

__all__ = ["name_said"]

_NAME = re.compile(
    r"\b(?i:i'?m|i am|my name is|my name's|call me|this is|it's)\s+([A-Z][a-z]+(?:-[A-Z][a-z]+)?)\b"
)
_NOT_NAMES = frozenset(
    {
        *("Fine", "Good", "Okay", "Ok", "Great", "Here", "Back", "Sorry", "Sure", "Not", "Just", "So"),
        *("Very", "Really", "Happy", "Tired", "Hungry", "Going", "Also", "Still", "Done", "Ready", "Well"),
        *("Bored", "Busy", "Home", "New", "Glad", "Excited", "Talking", "Trying", "Listening", "Thinking"),
    }
)
"""Words that follow "I'm" capitalised (at a sentence start, or by whisper) and are not names."""


def name_said(transcript: str, bot_name: str = "") -> str | None:
    """The name a speaker gives for themselves in `transcript`, if they give one."""
    for match in _NAME.finditer(transcript.replace("’", "'")):
        name = match.group(1)
        if name not in _NOT_NAMES and name.lower() != bot_name.lower():
            return name
    return None
