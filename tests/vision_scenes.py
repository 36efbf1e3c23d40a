"""Scenes drawn to look like VRChat's: players' nameplates (a display name on a plate of their trust rank's
colour) with chatbox bubbles above them (light text on a dark, translucent bubble, wrapped), over busy
backgrounds, with world text (signs) that is neither. Used by the vision tests and `bench/vision.py`."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

TRUST_COLOURS = {
    "new user": (23, 120, 255),
    "user": (43, 207, 92),
    "known user": (255, 123, 66),
    "trusted user": (129, 67, 230),
}
"""VRChat's trust rank colours (a visitor's plate is grey: not read as a nameplate, see machine/vision)."""
BUBBLE = (24, 24, 28)
BUBBLE_OPACITY = 0.85
FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
)


@dataclass(frozen=True)
class Player:
    """One player in a scene: their name, what their bubble says (None: no bubble), and text sizes."""

    name: str
    says: str | None = None
    text_px: int = 22
    """The chatbox text's font size in pixels."""
    rank: str = "user"


@dataclass(frozen=True)
class Drawn:
    """Where a player's things were drawn, for checking what was read."""

    player: Player
    bubble: tuple[int, int, int, int] | None
    plate: tuple[int, int, int, int]


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans where the system has it (Debian's fonts-dejavu-core), else Pillow's own font."""
    path = Path(FONT_FILES[1 if bold else 0])
    if path.is_file():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def background(width: int, height: int, seed: int, kind: str = "blocks") -> Image.Image:
    """A busy world: coloured blocks, stripes, or a smooth gradient with noise."""
    rng = np.random.default_rng(seed)
    if kind == "blocks":
        blocks = rng.integers(0, 256, (height // 24 + 1, width // 24 + 1, 3), dtype=np.uint8)
        pixels = blocks.repeat(24, axis=0).repeat(24, axis=1)[:height, :width]
    elif kind == "stripes":
        colours = rng.integers(0, 256, (64, 3), dtype=np.uint8)
        index = (np.add.outer(np.arange(height), np.arange(width)) // 18) % 64
        pixels = colours[index]
    else:
        ys, xs = np.mgrid[0:height, 0:width]
        pixels = np.stack(
            [xs * 255 // width, ys * 255 // height, (xs + ys) * 127 // (width + height)], axis=2
        )
        pixels = np.clip(pixels + rng.normal(0, 12, pixels.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(pixels.astype(np.uint8)))


def draw_sign(image: Image.Image, text: str, at: tuple[int, int]) -> None:
    """World text: dark letters on a light sign (not a bubble, not a nameplate)."""
    draw = ImageDraw.Draw(image)
    face = font(26, bold=True)
    left, top, right, bottom = draw.textbbox(at, text, font=face)
    draw.rectangle((left - 12, top - 10, right + 12, bottom + 10), fill=(235, 225, 200))
    draw.text(at, text, font=face, fill=(40, 30, 20))


def draw_player(
    image: Image.Image, player: Player, centre_x: int, plate_top: int, max_width: int = 520
) -> Drawn:
    """A nameplate centred at `centre_x` with its top at `plate_top`, and the bubble above it (its text
    wrapped to about `max_width` pixels)."""
    draw = ImageDraw.Draw(image)
    name_face = font(24, bold=True)
    left, top, right, bottom = (int(v) for v in draw.textbbox((0, 0), player.name, font=name_face))
    width, height = right - left + 36, bottom - top + 20
    plate = (centre_x - width // 2, plate_top, centre_x + width // 2, plate_top + height)
    draw.rounded_rectangle(plate, radius=10, fill=TRUST_COLOURS[player.rank])
    draw.text((plate[0] + 18 - left, plate_top + 10 - top), player.name, font=name_face, fill=(255, 255, 255))
    if player.says is None:
        return Drawn(player, None, plate)
    face = font(player.text_px)
    wrap = max(8, int(max_width / (0.55 * player.text_px)))
    lines = textwrap.wrap(player.says, wrap) or [""]
    line_height = int(player.text_px * 1.3)
    widths = [int(np.ceil(draw.textbbox((0, 0), line, font=face)[2])) for line in lines]
    pad = max(10, player.text_px // 2)
    box_width, box_height = max(widths) + 2 * pad, len(lines) * line_height + 2 * pad
    bubble_left = min(max(4, centre_x - box_width // 2), image.width - box_width - 4)
    bubble = (bubble_left, plate_top - 14 - box_height, bubble_left + box_width, plate_top - 14)
    region = np.asarray(image.crop(bubble), dtype=np.float32)
    blended = region * (1 - BUBBLE_OPACITY) + np.array(BUBBLE, dtype=np.float32) * BUBBLE_OPACITY
    mask = Image.new("L", (box_width, box_height), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, box_width - 1, box_height - 1), radius=pad, fill=255)
    image.paste(Image.fromarray(blended.astype(np.uint8)), bubble[:2], mask)
    for index, line in enumerate(lines):
        draw.text(
            (bubble[0] + pad, bubble[1] + pad + index * line_height), line, font=face, fill=(250, 250, 250)
        )
    return Drawn(player, bubble, plate)


def scene(
    players: list[Player], seed: int = 0, width: int = 1280, height: int = 720, kind: str = "blocks"
) -> tuple[Image.Image, list[Drawn]]:
    """Players side by side over a busy background, a sign in a corner."""
    image = background(width, height, seed, kind)
    draw_sign(image, "WELCOME TO THE BLACK CAT", (40, height - 80))
    drawn = []
    step = width // (len(players) + 1)
    rng = np.random.default_rng(seed + 1)
    for index, player in enumerate(players):
        plate_top = int(rng.integers(height // 2, height // 2 + 120))
        drawn.append(draw_player(image, player, step * (index + 1), plate_top, min(520, step - 80)))
    return image, drawn
