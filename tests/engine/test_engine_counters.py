"""Counter resets (server restarts) never give negative rates or spikes."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.counters import adjusted_buckets, adjusted_total, rate, total_increase

# A counter's life: segments of monotone growth, each after a restart starting near zero.
_steps = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=20)
_segments = st.lists(st.tuples(st.floats(min_value=0, max_value=100, allow_nan=False), _steps),
                     min_size=1, max_size=6)


def _readings(segments: list[tuple[float, list[float]]], first_base: float) -> tuple[list[float], float]:
    """Raw readings and the true increase after the first reading."""
    values: list[float] = []
    true_increase = 0.0
    for i, (start, steps) in enumerate(segments):
        value = first_base if i == 0 else start
        if values:
            true_increase += value  # counted from zero after a restart
        values.append(value)
        for step in steps:
            value += step
            true_increase += step
            values.append(value)
    return values, true_increase


@settings(max_examples=200, deadline=None)
@given(_segments, st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_rates_over_counters_with_resets_are_never_negative(segments: list[tuple[float, list[float]]],
                                                           base: float) -> None:
    values, _ = _readings(segments, base)
    samples = [(5.0 * i, v) for i, v in enumerate(values)]
    r = rate(samples)
    assert r is None or r >= 0
    assert total_increase(values) >= 0


@settings(max_examples=200, deadline=None)
@given(_segments, st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_adjusted_total_only_grows_and_counts_each_restart_from_zero(
        segments: list[tuple[float, list[float]]], base: float) -> None:
    values, true_increase = _readings(segments, base)
    prev_raw: float | None = None
    adjusted = 0.0
    history = []
    for value in values:
        adjusted = adjusted_total(prev_raw, adjusted, value)
        history.append(adjusted)
        prev_raw = value
    assert all(b >= a for a, b in itertools.pairwise(history))
    # the first reading is a baseline, not an increase; a restart whose new value is still above the old
    # one cannot be told apart from growth, so the adjusted increase never exceeds the true one (no spike)
    assert history[-1] - history[0] <= true_increase * (1 + 1e-9) + 1e-6
    assert history[-1] - history[0] == pytest.approx(total_increase(values), rel=1e-9, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(min_value=0, max_value=50), min_size=4, max_size=4), min_size=2, max_size=15))
def test_adjusted_histogram_buckets_never_go_down(increments: list[list[int]]) -> None:
    # cumulative buckets built from per-bucket increments; every third scrape the server restarts
    raw_prev: tuple[float, ...] | None = None
    adjusted: tuple[float, ...] = (0.0,) * 4
    counts = [0.0] * 4
    last = adjusted
    for i, inc in enumerate(increments):
        if i and i % 3 == 0:
            counts = [0.0] * 4
        counts = [c + sum(inc[: j + 1]) for j, c in enumerate(counts)]
        adjusted = adjusted_buckets(raw_prev, adjusted, counts)
        if raw_prev is not None:
            assert all(b >= a for a, b in zip(last, adjusted, strict=True))
        last, raw_prev = adjusted, tuple(counts)


def test_a_restart_counts_the_new_value_not_a_drop_or_a_jump() -> None:
    # 1000 -> 1100 (+100), restart -> 30 (+30 since zero), -> 80 (+50)
    assert total_increase([1000, 1100, 30, 80]) == 180
    assert rate([(0, 1000), (5, 1100), (10, 30), (15, 80)]) == pytest.approx(12.0)


def test_rate_needs_two_readings_and_a_time_span() -> None:
    assert rate([(0, 5)]) is None
    assert rate([(3, 5), (3, 9)]) is None
