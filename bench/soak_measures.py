"""What a soak run's samples come to: growth of resident memory, drift of the reply start, the busiest
minute of friend-request accepts. Pure functions over the samples `bench/soak.py` takes, so that the
verdicts are unit-tested."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of `(x, y)` points; None with fewer than three or no spread in x."""
    if len(points) < 3:
        return None
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def growth_mb_per_min(samples: Sequence[tuple[float, float]], after_s: float) -> float | None:
    """The least-squares slope (MB a minute) of `(seconds since start, MB)` samples taken after `after_s`;
    None with fewer than three."""
    return slope([(t / 60, mb) for t, mb in samples if t >= after_s])


def growth_mb_per_turn(samples: Sequence[tuple[float, float]], after_s: float) -> float | None:
    """The least-squares slope (MB a turn) of samples taken one before each utterance, after `after_s`:
    a leak that comes with turns shows whatever their pace; None with fewer than three."""
    return slope(_by_turn(samples, after_s))


def _by_turn(samples: Sequence[tuple[float, float]], after_s: float) -> list[tuple[float, float]]:
    """`(turn number, MB)` of the samples taken after `after_s`, one before each utterance."""
    return [(float(turn), mb) for turn, (t, mb) in enumerate(samples) if t >= after_s]


def theil_sen(points: Sequence[tuple[float, float]]) -> float | None:
    """The median of the slopes between every two points (one wild point or one step moves it little);
    None with fewer than three."""
    slopes = [
        (y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(points) for x2, y2 in points[i + 1 :] if x2 != x1
    ]
    return statistics.median(slopes) if len(points) >= 3 and slopes else None


def sustained_growth_mb_per_turn(samples: Sequence[tuple[float, float]], after_s: float) -> float | None:
    """Growth per turn that holds over the whole run: the lesser of the robust slopes (`theil_sen`) of the
    first and the second half of the samples taken after `after_s`, one before each utterance. A leak
    grows both halves; a one-time step (a cache that grows once) or a sample caught mid-turn does not.
    None with fewer than three samples in a half."""
    turns = _by_turn(samples, after_s)
    half = len(turns) // 2
    first, second = theil_sen(turns[:half]), theil_sen(turns[half:])
    return None if first is None or second is None else min(first, second)


def range_mb(samples: Sequence[tuple[float, float]], after_s: float) -> float | None:
    """Highest minus lowest MB among the samples taken after `after_s` (None when there are none)."""
    values = [mb for t, mb in samples if t >= after_s]
    return max(values) - min(values) if values else None


def _thirds(
    values: Sequence[tuple[float, float]], duration_s: float
) -> tuple[list[tuple[float, float]], ...]:
    """`(seconds since start, value)` pairs split into the first, middle and last third of the run (by
    time; one past the end counts in the last)."""
    thirds: tuple[list[tuple[float, float]], ...] = ([], [], [])
    for t, value in values:
        thirds[min(2, max(0, int(3 * t / duration_s)))].append((t, value))
    return thirds


def thirds_medians(values: Sequence[tuple[float, float]], duration_s: float) -> tuple[float | None, ...]:
    """The median of `(seconds since start, value)` pairs in the first, middle and last third of the run."""
    return tuple(
        statistics.median(value for _, value in third) if third else None
        for third in _thirds(values, duration_s)
    )


def busiest_window(times: Sequence[float], window_s: float = 60.0) -> int:
    """The most of `times` (seconds) that fall in any half-open window `[t, t + window_s)`."""
    ordered = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window_s:
            start += 1
        most = max(most, end - start + 1)
    return most


def thirds_rates(samples: Sequence[tuple[float, float]], duration_s: float) -> tuple[float | None, ...]:
    """How fast a cumulative `(seconds since start, total)` series rose in each third of the run: its rise
    from the first to the last sample inside the third over the time between them (CPU seconds a second:
    the share of one core); None for a third with fewer than two samples."""
    return tuple(
        (third[-1][1] - third[0][1]) / (third[-1][0] - third[0][0])
        if len(third) > 1 and third[-1][0] > third[0][0]
        else None
        for third in _thirds(samples, duration_s)
    )
