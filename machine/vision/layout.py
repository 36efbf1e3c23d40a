"""What the text on screen is: chatbox bubbles and nameplates, told apart by what is behind the text.

VRChat draws a chatbox message as light text on a dark, grey bubble above the player's head, and their
display name as light text on a coloured plate (its colour is their trust rank) below it. A line of text
whose surroundings are mostly of one colour sits on a plate: dark grey, a bubble's; saturated colour, a
nameplate's. Anything else (signs, menus, the world; a visitor's grey plate too) is ignored. A bubble's
lines (it wraps) are joined, and the bubble belongs to the nameplate right under it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from machine.ports import TextLine
from machine.vision.changes import Box

__all__ = ["Bubble", "Layout", "Nameplate", "backdrop", "lay_out"]

Backdrop = Literal["bubble", "nameplate", "other"]

RING_PX = 2
"""How far around a line's box its backdrop is sampled (the box and this ring)."""
BACKDROP_SHARE = 0.5
"""The share of those pixels that must be of one colour (a plate behind the text) for the line to count."""
PLATE_SPREAD = 48.0
"""How far (RGB distance) a pixel may be from the ring's median colour and still be the plate: a
translucent bubble lets some of the world through."""
_NAME_CHARS = re.compile(r"[^\w .\-~'!?&+]")


@dataclass(frozen=True)
class Bubble:
    """One chatbox bubble's text (its lines joined), its box, and the name on the plate under it."""

    text: str
    box: Box
    name: str | None = None


@dataclass(frozen=True)
class Nameplate:
    """A display name and its plate's box."""

    name: str
    box: Box


@dataclass(frozen=True)
class Layout:
    """The bubbles and nameplates of one frame."""

    bubbles: tuple[Bubble, ...] = ()
    nameplates: tuple[Nameplate, ...] = ()


def backdrop(pixels: npt.NDArray[np.uint8], box: Box) -> Backdrop:
    """What is behind the line in `box`: a bubble (dark grey), a nameplate (saturated colour), or other.

    The box (grown by `RING_PX`) is mostly background, the glyphs a minority: its median colour is the
    plate's, if most of it is near that colour (a plate of one colour, not the busy world)."""
    height, width = pixels.shape[:2]
    left, top, right, bottom = box
    area = pixels[
        max(0, top - RING_PX) : min(height, bottom + RING_PX),
        max(0, left - RING_PX) : min(width, right + RING_PX),
    ]
    colours = area.reshape(-1, 3).astype(np.float32)
    if not len(colours):
        return "other"
    colour = np.median(colours, axis=0)
    if np.mean(np.linalg.norm(colours - colour, axis=1) < PLATE_SPREAD) < BACKDROP_SHARE:
        return "other"  # no plate of one colour behind it: the world
    value = float(colour.max())
    chroma = value - float(colour.min())  # saturation is unsteady in the dark: a tinted bubble is still grey
    if value < 90 and chroma < 40:
        return "bubble"
    if value > 70 and chroma / value > 0.4:
        return "nameplate"
    return "other"


def _display_name(text: str) -> str | None:
    name = " ".join(_NAME_CHARS.sub("", text).split())
    return name if 1 <= len(name) <= 32 else None


def _bubbles(lines: list[TextLine]) -> list[tuple[list[TextLine], Box]]:
    """Lines grouped into bubbles: a line just under another and overlapping it sideways goes on it."""
    groups: list[tuple[list[TextLine], Box]] = []
    for line in sorted(lines, key=lambda line: (line.box[1], line.box[0])):
        left, top, right, bottom = line.box
        for index, (members, (g_left, g_top, g_right, g_bottom)) in enumerate(groups):
            line_height = members[-1].box[3] - members[-1].box[1]
            if -line_height / 2 <= top - g_bottom <= 0.8 * line_height and left < g_right and g_left < right:
                members.append(line)
                groups[index] = (
                    members,
                    (min(left, g_left), g_top, max(right, g_right), max(bottom, g_bottom)),
                )
                break
        else:
            groups.append(([line], line.box))
    return groups


def _under(bubble: Box, plates: list[Nameplate]) -> str | None:
    """The name on the nearest plate under the bubble, centred within its width."""
    left, _, right, bottom = bubble
    best: tuple[int, str] | None = None
    for plate in plates:
        p_left, p_top, p_right, p_bottom = plate.box
        centre = (p_left + p_right) / 2
        gap = p_top - bottom
        below = -(p_bottom - p_top) <= gap <= 4 * (p_bottom - p_top) + 24
        if below and left - 40 <= centre <= right + 40 and (best is None or gap < best[0]):
            best = (gap, plate.name)
    return best[1] if best else None


def lay_out(pixels: npt.NDArray[np.uint8], lines: list[TextLine]) -> Layout:
    """The bubbles (with their players' names where a plate is under them) and nameplates among `lines`,
    read from `pixels`."""
    kinds = [(line, backdrop(pixels, line.box)) for line in lines]
    plates = [
        Nameplate(name, line.box)
        for line, kind in kinds
        if kind == "nameplate" and (name := _display_name(line.text)) is not None
    ]
    bubbles = tuple(
        Bubble(" ".join(" ".join(line.text.split()) for line in members), box, _under(box, plates))
        for members, box in _bubbles([line for line, kind in kinds if kind == "bubble"])
    )
    return Layout(bubbles, tuple(plates))
