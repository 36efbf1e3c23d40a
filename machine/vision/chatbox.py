"""Chatbox bubbles across frames become messages: each bubble is followed from frame to frame (by the name
under it, else by where it is), its text may grow as it is typed or be replaced by the next message, and
a text that has stayed the same for `settle_s` is handed on once. A bubble stays up for seconds, so the
same text is never handed on twice while it is up (nor again within `repeat_s` from the same player)."""

from __future__ import annotations

from dataclasses import dataclass, field

from machine.ports import ChatboxMessage
from machine.vision.layout import Bubble

__all__ = ["ChatboxTracker"]

GONE_S = 2.0
"""A bubble not seen for this long is gone: the same text shown again later is a new message."""
NEAR_PX = 200
"""A nameless bubble within this many pixels of one seen before is the same bubble (it moved)."""


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass
class _Track:
    name: str | None
    text: str
    centre: tuple[float, float]
    first_seen: float
    changed_at: float
    last_seen: float
    handed_on: set[str] = field(default_factory=set)


def _centre(bubble: Bubble) -> tuple[float, float]:
    left, top, right, bottom = bubble.box
    return (left + right) / 2, (top + bottom) / 2


class ChatboxTracker:
    """Follows bubbles over frames and says which messages are ready. One caller at a time."""

    def __init__(self, settle_s: float, repeat_s: float = 60.0) -> None:
        self._settle_s = settle_s
        self._repeat_s = repeat_s
        self._tracks: list[_Track] = []
        self._recent: dict[tuple[str | None, str], float] = {}

    def update(self, bubbles: tuple[Bubble, ...], now: float) -> list[ChatboxMessage]:
        """The bubbles on screen at monotonic time `now`; returns the messages that settled."""
        for bubble in bubbles:
            track = self._match(bubble)
            if track is None:
                self._tracks.append(_Track(bubble.name, bubble.text, _centre(bubble), now, now, now))
                continue
            if _normal(bubble.text) != _normal(track.text):
                if not _normal(bubble.text).startswith(_normal(track.text)):
                    track.first_seen = now  # another message in the same bubble
                track.text, track.changed_at = bubble.text, now
            track.name = track.name or bubble.name
            track.centre, track.last_seen = _centre(bubble), now
        self._tracks = [track for track in self._tracks if now - track.last_seen < GONE_S]
        self._recent = {key: at for key, at in self._recent.items() if now - at < self._repeat_s}
        ready = []
        for track in self._tracks:
            text = _normal(track.text)
            if now - track.changed_at < self._settle_s or text in track.handed_on:
                continue
            track.handed_on.add(text)
            if (track.name, text) in self._recent:
                continue
            self._recent[(track.name, text)] = now
            ready.append(ChatboxMessage(track.text, track.name, track.first_seen, now))
        return ready

    def _match(self, bubble: Bubble) -> _Track | None:
        if bubble.name is not None:
            for track in self._tracks:
                if track.name == bubble.name:
                    return track
        x, y = _centre(bubble)
        near = [
            track
            for track in self._tracks
            if (bubble.name is None or track.name is None)
            and abs(track.centre[0] - x) + abs(track.centre[1] - y) <= NEAR_PX
        ]
        return min(near, key=lambda t: abs(t.centre[0] - x) + abs(t.centre[1] - y), default=None)

    def forget(self) -> None:
        """Drop every bubble followed and every message remembered (the session ended)."""
        self._tracks.clear()
        self._recent.clear()
