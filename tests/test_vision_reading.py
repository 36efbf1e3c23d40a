"""The eyes' own logic on pictures drawn in numpy: what changed, what is behind a line of text (bubble,
nameplate, or anything else), bubbles joined and attributed, and the CPU budget."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from machine.ports import Frame, TextLine
from machine.settings import VisionSettings
from machine.vision.changes import brightness, changed_regions
from machine.vision.eyes import READER_NICE, CpuBudget, Eyes, ReadText
from machine.vision.layout import backdrop, lay_out
from machine.vision.screen import best_match

DARK = (28, 28, 30)
BLUE = (23, 120, 255)


def busy(height: int = 360, width: int = 640, seed: int = 0) -> np.ndarray:
    """Random coloured blocks of 8 pixels: a background with no plate of one colour anywhere."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    return np.ascontiguousarray(blocks.repeat(8, axis=0).repeat(8, axis=1))


def plate(pixels: np.ndarray, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> None:
    left, top, right, bottom = box
    pixels[top:bottom, left:right] = colour


def text(pixels: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """White strokes standing in for glyphs inside `box`."""
    left, top, right, bottom = box
    pixels[top + 2 : bottom - 2, left + 2 : right - 2 : 4] = 255


def test_nothing_changed_is_no_region_and_a_new_bubble_is_one_small_region() -> None:
    before = busy()
    after = before.copy()
    assert changed_regions(brightness(before), brightness(after)) == []
    plate(after, (200, 100, 330, 140), DARK)
    (region,) = changed_regions(brightness(before), brightness(after))
    left, top, right, bottom = region
    assert left <= 200 and top <= 100 and right >= 330 and bottom >= 140
    assert (right - left) * (bottom - top) < 0.1 * 640 * 360


def test_the_first_frame_a_new_size_or_a_whole_new_view_is_read_whole() -> None:
    frame = brightness(busy())
    assert changed_regions(None, frame) == [(0, 0, 640, 360)]
    assert changed_regions(brightness(busy(320, 640)), frame) == [(0, 0, 640, 360)]
    assert changed_regions(brightness(busy(seed=1)), frame) == [(0, 0, 640, 360)]


def test_a_line_on_a_dark_bubble_a_coloured_plate_or_the_busy_world_is_told_apart() -> None:
    pixels = busy()
    plate(pixels, (100, 100, 300, 150), DARK)
    plate(pixels, (400, 100, 520, 140), BLUE)
    line_on_bubble, line_on_plate = (110, 110, 290, 140), (410, 106, 510, 134)
    text(pixels, line_on_bubble)
    text(pixels, line_on_plate)
    assert backdrop(pixels, line_on_bubble) == "bubble"
    assert backdrop(pixels, line_on_plate) == "nameplate"
    assert backdrop(pixels, (100, 250, 300, 280)) == "other"
    grey_sign = pixels.copy()
    plate(grey_sign, (100, 100, 300, 150), (200, 200, 200))
    assert backdrop(grey_sign, line_on_bubble) == "other"


def test_a_wrapped_bubble_is_one_message_and_belongs_to_the_plate_under_it() -> None:
    pixels = busy()
    plate(pixels, (100, 40, 400, 130), DARK)  # Milo's bubble, two lines
    plate(pixels, (190, 150, 310, 180), BLUE)  # Milo's plate
    plate(pixels, (450, 60, 600, 100), DARK)  # a bubble with no plate under it
    lines = [
        TextLine("Celeste, what is your", (110, 50, 390, 80), 0.99),
        TextLine("favourite  colour?", (110, 86, 300, 116), 0.99),
        TextLine("MiloTheFox", (200, 153, 300, 177), 0.99),
        TextLine("hello", (460, 66, 560, 94), 0.99),
        TextLine("WELCOME", (100, 250, 300, 280), 0.99),  # a sign in the world
    ]
    layout = lay_out(pixels, lines)
    assert [(b.text, b.name) for b in layout.bubbles] == [
        ("Celeste, what is your favourite colour?", "MiloTheFox"),
        ("hello", None),
    ]
    assert [p.name for p in layout.nameplates] == ["MiloTheFox"]


class _Reader:
    def __init__(self, lines: list[TextLine]) -> None:
        self.lines = lines
        self.shapes: list[tuple[int, ...]] = []

    def read(self, pixels: np.ndarray) -> list[TextLine]:
        self.shapes.append(pixels.shape)
        return self.lines


def test_rereading_a_region_replaces_the_lines_there_and_keeps_the_others() -> None:
    pixels = busy()
    reader = _Reader([TextLine("one", (0, 0, 50, 20), 1.0), TextLine("two", (0, 200, 50, 220), 1.0)])
    known = ReadText(reader)
    known.reread(pixels, [(0, 0, 640, 360)])
    reader.lines = [TextLine("one more", (5, 5, 80, 25), 1.0)]  # read in the crop: crop coordinates
    known.reread(pixels, [(10, 10, 30, 20)])
    assert sorted(line.text for line in known.lines) == ["one more", "two"]
    assert [line.box for line in known.lines if line.text == "one more"] == [(5, 5, 80, 25)]
    assert reader.shapes[1][0] < 100, "only the region (grown to the line it touches) was read"


def test_the_cpu_budget_allows_a_burst_then_holds_reading_to_its_share() -> None:
    budget = CpuBudget(share=0.15, burst=2.0)
    assert budget.allows(0.0)
    budget.spend(3.0)  # a whole frame, over the burst
    assert not budget.allows(1.0)
    assert not budget.allows(6.0)  # 0.9 CPU s back of 1.0 owed
    assert budget.allows(7.0)
    spent, now = 0.0, 7.0
    while now < 107.0:  # 100 s of work costing 0.5 CPU s each time it is allowed
        if budget.allows(now):
            budget.spend(0.5)
            spent += 0.5
        now += 0.25
    assert spent <= 0.15 * 100 + 2.0 + 0.5


@pytest.mark.parametrize("share", [0.05, 0.5])
def test_the_budget_refills_at_its_share(share: float) -> None:
    budget = CpuBudget(share=share, burst=1.0)
    budget.spend(2.0)
    assert budget.allows(0.0) is False
    assert budget.allows(1.0 / share + 0.01) is True


class _Still:
    """A grabber showing one busy picture."""

    def grab(self) -> Frame:
        return Frame(busy(), time.monotonic())

    def close(self) -> None:
        return None


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own niceness is Linux's")
def test_the_reader_runs_at_a_lower_priority_than_the_voice_pipeline() -> None:
    eyes = Eyes(VisionSettings(enabled=True), _Still, _Reader([]))
    eyes.start(lambda message: None)
    try:
        deadline = time.monotonic() + 10
        while eyes.frames_read == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        (reader,) = [t for t in threading.enumerate() if t.name == "vision-reader"]
        assert reader.native_id is not None
        assert (
            os.getpriority(os.PRIO_PROCESS, reader.native_id)
            == os.getpriority(os.PRIO_PROCESS, 0) + READER_NICE
        )
    finally:
        eyes.stop()


def test_nothing_is_read_while_the_bot_works_out_a_reply_and_what_changed_is_read_after() -> None:
    busy = threading.Event()
    busy.set()
    reader = _Reader([])
    eyes = Eyes(VisionSettings(enabled=True, fps=20), _Still, reader)
    eyes.start(lambda message: None, busy.is_set)
    try:
        time.sleep(0.25)
        assert reader.shapes == [] and eyes.latest() is not None, "frames grabbed, none read"
        busy.clear()
        deadline = time.monotonic() + 10
        while not reader.shapes and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reader.shapes == [(360, 640, 3)], "the frame is read once the bot is free"
    finally:
        eyes.stop()


def test_the_window_titled_exactly_wins_over_one_whose_title_only_contains_it() -> None:
    console = ("C:\\Users\\robin\\vrchat-companion\\.venv\\Scripts\\python.exe", (0, 0, 800, 600))
    game = ("VRChat", (100, 50, 1280, 720))
    assert best_match("VRChat", [console, game]) == (100, 50, 1280, 720)
    assert best_match("vrchat", [console]) == (0, 0, 800, 600)
    assert best_match("VRChat", []) is None
