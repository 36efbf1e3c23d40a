"""Which parts of a frame changed since the last one read: only those are read again (a static scene costs
nothing; a chatbox bubble that appears or grows is a small region)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

Box = tuple[int, int, int, int]
"""left, top, right, bottom in pixels."""

CELL = 16
"""Changes are found on a grid of cells this many pixels square."""
PIXEL_STEP = 24
"""A pixel whose brightness moved more than this (of 255) has changed (screen grabs carry no noise)."""
WHOLE_SHARE = 0.5
"""When more than this share of the frame changed, the whole frame is read at once."""


def brightness(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """The mean of the three channels, as int16 (differences do not wrap)."""
    return (pixels.astype(np.int16).sum(axis=2) // 3).astype(np.int16)


def changed_regions(before: npt.NDArray[np.int16] | None, after: npt.NDArray[np.int16]) -> list[Box]:
    """Boxes around what differs between two brightness images (see :func:`brightness`), each grown by a
    cell; the whole frame when there is no `before`, its size changed, or most of it changed."""
    height, width = after.shape
    whole = [(0, 0, width, height)]
    if before is None or before.shape != after.shape:
        return whole
    moved = np.abs(after - before) > PIXEL_STEP
    rows, cols = -(-height // CELL), -(-width // CELL)
    padded = np.zeros((rows * CELL, cols * CELL), dtype=bool)
    padded[:height, :width] = moved
    cells = padded.reshape(rows, CELL, cols, CELL).any(axis=(1, 3))
    if not cells.any():
        return []
    if cells.mean() > WHOLE_SHARE:
        return whole
    grown = ndimage.binary_dilation(cells, iterations=1)
    labels, _ = ndimage.label(grown)
    boxes = []
    for found in ndimage.find_objects(labels):
        if found is None:
            continue
        ys, xs = found
        boxes.append(
            (xs.start * CELL, ys.start * CELL, min(width, xs.stop * CELL), min(height, ys.stop * CELL))
        )
    return boxes


def overlaps(a: Box, b: Box) -> bool:
    """Whether two boxes share any pixel."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def union(a: Box, b: Box) -> Box:
    """The smallest box holding both."""
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def grown(box: Box, margin: int, width: int, height: int) -> Box:
    """`box` grown by `margin` pixels on every side, within a `width` x `height` frame."""
    return (
        max(0, box[0] - margin),
        max(0, box[1] - margin),
        min(width, box[2] + margin),
        min(height, box[3] + margin),
    )
