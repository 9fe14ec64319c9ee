"""GPU time and energy per hour: hand-computed cases for allocation, busy time, energy, gaps."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent.cost.measure import GpuReading, measure_gpus
from tests.cost.cost_helpers import T0, at

H = timedelta(hours=1)


def steady(start_s: float, end_s: float, step: float, util: float = 0.5, watts: float = 100.0,
           uuid: str = "GPU-0", joules0: float = 0.0) -> list[GpuReading]:
    out = []
    t, joules = start_s, joules0
    while t <= end_s + 1e-9:
        out.append(GpuReading(at(t), uuid, True, util, joules))
        t += step
        joules += watts * step
    return out


def test_a_fully_sampled_hour_is_held_observed_and_half_busy() -> None:
    readings = steady(-10, 3600, 10)  # one reading before the hour and one at its end
    hour = measure_gpus(readings, T0, T0 + H)[T0]
    assert hour.gpus == 1
    assert hour.held_seconds == pytest.approx(3600)
    assert hour.allocated_gpu_seconds == pytest.approx(3600)
    assert hour.observed_gpu_seconds == pytest.approx(3600)
    assert hour.gpu_gap_seconds == 0
    assert hour.busy_gpu_seconds == pytest.approx(1800)
    # 360 ten-second increments of 1000 J land in this hour; the one ending at 11:00:00 in the next.
    assert hour.energy_joules == pytest.approx(360_000)


def test_energy_counter_decrease_is_a_reset_never_negative() -> None:
    readings = [GpuReading(at(s), "GPU-0", True, 0.0, j) for s, j in [(0, 1000), (10, 2000), (20, 500), (30, 1500)]]
    hour = measure_gpus(readings, T0, T0 + H)[T0]
    assert hour.energy_joules == pytest.approx(1000 + 500 + 1000)


def test_a_long_silence_is_billed_but_reported_as_a_gap_with_no_busy_time() -> None:
    times = [0, 10, 20, 30, 100, 110, 120]
    readings = [GpuReading(at(s), "GPU-0", True, 1.0, None) for s in times]
    hour = measure_gpus(readings, T0, T0 + H)[T0]
    assert hour.allocated_gpu_seconds == pytest.approx(120)
    assert hour.gpu_gap_seconds == pytest.approx(70)
    assert hour.observed_gpu_seconds == pytest.approx(50)
    assert hour.busy_gpu_seconds == pytest.approx(50)


def test_an_unreadable_gpu_is_still_held_but_its_time_is_a_gap() -> None:
    readings = [GpuReading(at(0), "GPU-0", True, 1.0, 0.0), GpuReading(at(10), "GPU-0", False),
                GpuReading(at(20), "GPU-0", True, 1.0, 3000.0)]
    hour = measure_gpus(readings, T0, T0 + H)[T0]
    assert hour.allocated_gpu_seconds == pytest.approx(20)
    assert hour.gpu_gap_seconds == pytest.approx(10)
    assert hour.busy_gpu_seconds == pytest.approx(10)
    assert hour.energy_joules == pytest.approx(3000)  # the counter kept counting while unreadable


def test_an_interval_across_the_hour_boundary_is_split_by_time() -> None:
    readings = [GpuReading(at(3590), "GPU-0", True, 1.0, None), GpuReading(at(3610), "GPU-0", True, 1.0, None)]
    hours = measure_gpus(readings, T0, T0 + 2 * H)
    assert hours[T0].busy_gpu_seconds == pytest.approx(10)
    assert hours[T0 + H].busy_gpu_seconds == pytest.approx(10)


def test_gpus_count_and_wall_time_with_a_gpu_added_mid_hour() -> None:
    readings = steady(-10, 3600, 10, uuid="GPU-0") + steady(1800, 3600, 10, uuid="GPU-1")
    hour = measure_gpus(readings, T0, T0 + H)[T0]
    assert hour.gpus == 2
    assert hour.held_seconds == pytest.approx(3600)
    assert hour.allocated_gpu_seconds == pytest.approx(3600 + 1800)


def test_an_hour_without_any_sample_is_bridged_from_its_neighbours() -> None:
    # What the store returns around an empty hour: readings before it and after it, none inside.
    readings = steady(-100, -10, 10, util=0.2) + steady(3610, 3700, 10, util=0.2, joules0=9000.0)
    hour = measure_gpus(readings, T0, T0 + H)[T0]
    assert hour.allocated_gpu_seconds == pytest.approx(3600)
    assert hour.gpu_gap_seconds == pytest.approx(3600)
    assert hour.busy_gpu_seconds == 0
    assert hour.energy_joules == 0  # the increase across the gap lands in the hour it is read


def test_a_gpu_first_seen_mid_hour_is_held_from_then_only() -> None:
    hour = measure_gpus(steady(900, 3600, 10), T0, T0 + H)[T0]
    assert hour.held_seconds == pytest.approx(2700)
    assert hour.allocated_gpu_seconds == pytest.approx(2700)
