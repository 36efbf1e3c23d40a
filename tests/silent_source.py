"""An audio source of silence in real time that ends once enough turns have ended: for runs whose turns
come from elsewhere (typed chatbox messages), used by the vision tests and `bench/vision.py`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from machine.ports import CHUNK_SAMPLES, SAMPLE_RATE, AudioChunk
from machine.turn_metrics import TurnRecord


class SilentUntilAnswered:
    """Silence in real time until `turns` turns are in `records` (the run's turn callback fills it); more
    than `timeout_s` fails (a bound against a hang)."""

    def __init__(self, records: list[TurnRecord], turns: int = 1, timeout_s: float = 120.0) -> None:
        self.records, self.turns, self.timeout_s = records, turns, timeout_s

    def run(
        self,
        deliver: Callable[[AudioChunk], None],
        wait_for_turn: Callable[[float], bool],
        stopping: threading.Event,
    ) -> None:
        deadline = time.monotonic() + self.timeout_s
        while len(self.records) < self.turns and not stopping.is_set():
            assert time.monotonic() < deadline, (
                f"{self.turns} turns did not end within {self.timeout_s:.0f} s"
            )
            deliver(AudioChunk(np.zeros(CHUNK_SAMPLES, dtype=np.float32), time.monotonic()))
            time.sleep(CHUNK_SAMPLES / SAMPLE_RATE)
        wait_for_turn(10)
