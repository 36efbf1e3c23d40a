"""bench/soak_measures.py: the figures issue #26's verdicts are read from."""

from __future__ import annotations

import pytest
from bench_modules import bench_module

measures = bench_module("soak_measures")


def test_growth_is_the_slope_after_the_warm_up_in_mb_a_minute() -> None:
    warm_up = [(0.0, 1000.0), (60.0, 1300.0)]  # models loading: not counted
    steady = [(120.0 + 60 * m, 1400.0 + 2.0 * m) for m in range(10)]  # 2 MB a minute
    assert measures.growth_mb_per_min(warm_up + steady, after_s=120) == pytest.approx(2.0)
    assert measures.growth_mb_per_min(warm_up + steady, after_s=0) > 2.0


def test_growth_per_turn_counts_samples_not_minutes() -> None:
    warm_up = [(0.0, 1000.0), (30.0, 1300.0)]
    # a sample before each utterance, at an uneven pace: 3 MB more at each
    steady = [(120.0 + t, 1400.0 + 3.0 * n) for n, t in enumerate([0, 10, 40, 45, 100, 160])]
    assert measures.growth_mb_per_turn(warm_up + steady, after_s=120) == pytest.approx(3.0)
    assert measures.growth_mb_per_turn(steady[:2], after_s=0) is None


def test_sustained_growth_sees_a_leak_in_both_halves_but_not_one_step_or_one_wild_sample() -> None:
    leak = [(60.0 + 10 * n, 1700.0 + 2.5 * n + (3.0 if n % 3 == 0 else -2.0)) for n in range(16)]
    assert measures.sustained_growth_mb_per_turn(leak, after_s=60) == pytest.approx(2.5, abs=0.6)
    flat = [(60.0 + 10 * n, 1750.0 + (3.0 if n % 3 == 0 else -2.0)) for n in range(16)]
    step = [(t, mb + (30.0 if n >= 6 else 0.0)) for n, (t, mb) in enumerate(flat)]  # a cache grew once
    step[12] = (step[12][0], step[12][1] + 100.0)  # a sample caught mid-turn
    assert measures.growth_mb_per_turn(step, after_s=60) > 1.5, "least squares takes the step for a leak"
    assert measures.sustained_growth_mb_per_turn(step, after_s=60) == pytest.approx(0.0, abs=0.6)
    assert measures.sustained_growth_mb_per_turn(step[:5], after_s=60) is None


def test_growth_needs_three_samples() -> None:
    assert measures.growth_mb_per_min([(200.0, 1.0), (260.0, 2.0)], after_s=120) is None


def test_range_is_over_the_samples_after_the_time_given() -> None:
    samples = [(0.0, 900.0), (100.0, 1000.0), (200.0, 1040.0), (300.0, 1010.0)]
    assert measures.range_mb(samples, after_s=100) == 40.0
    assert measures.range_mb(samples, after_s=400) is None


def test_thirds_split_by_time_not_by_count() -> None:
    values = [(10.0, 1.0), (20.0, 3.0), (50.0, 5.0), (95.0, 7.0), (99.9, 9.0)]
    assert measures.thirds_medians(values, duration_s=90.0) == (2.0, 5.0, 8.0)


def test_rates_by_third_are_the_rise_over_the_time_inside_each_third() -> None:
    # a process using a quarter of a core, then half, then a whole one; a third with one sample has none
    cumulative = [(0.0, 0.0), (20.0, 5.0), (40.0, 15.0), (50.0, 20.0), (70.0, 40.0), (89.0, 59.0)]
    assert measures.thirds_rates(cumulative, 90.0) == (0.25, 0.5, 1.0)
    assert measures.thirds_rates([(0.0, 0.0), (70.0, 5.0)], 90.0) == (None, None, None)


def test_busiest_window_counts_accepts_in_any_sixty_seconds() -> None:
    times = [0.0, 10.0, 59.9, 60.0, 61.0, 200.0]
    assert measures.busiest_window(times) == 4  # 10.0 .. 61.0
    assert measures.busiest_window([]) == 0
    assert measures.busiest_window([5.0, 65.0]) == 1  # exactly 60 s apart: two windows
