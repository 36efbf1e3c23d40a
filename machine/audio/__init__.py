"""Audio in and out: PyAudio devices (capture, playback) and recorded WAV files (source and sink)."""

from __future__ import annotations

import queue
from typing import Any


def drain(blocks: queue.Queue[Any]) -> None:
    """Drop everything waiting in a block queue, without blocking."""
    while True:
        try:
            blocks.get_nowait()
        except queue.Empty:
            return
