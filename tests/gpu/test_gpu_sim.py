"""The simulated GPU behind the same driver interface as NVML, through the real collector."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.collectors.gpu.collector import GpuCollector, build_gpu_collector
from agent.config import GpuSettings
from agent.sim.gpu import SimulatedGpu
from tests.gpu.gpu_helpers import FakeClock, gpu_rows, points_named, value

TOTAL = 85_520_809_984.0


class Load:
    def __init__(self, busy: float) -> None:
        self.busy = busy

    def __call__(self) -> float:
        return self.busy


def _collector(sim: SimulatedGpu, clock: FakeClock, proc_root: Path) -> GpuCollector:
    return build_gpu_collector(GpuSettings(proc_root=str(proc_root)), "demo-host", driver=sim, clock=clock)


def test_simulated_samples_are_marked_and_named_simulated(clock: FakeClock, proc_root: Path) -> None:
    collector = _collector(SimulatedGpu(count=2, clock=clock), clock, proc_root)
    out = collector.collect_sync()
    assert [row.simulated for row in gpu_rows(out)] == [True, True]
    assert all("Simulated" in row.model for row in out.rows)
    assert all("Simulated" in dict(p.labels)["model"] for p in out.points)


def test_utilization_power_and_memory_follow_the_load(clock: FakeClock, proc_root: Path) -> None:
    load = Load(0.0)
    collector = _collector(SimulatedGpu(load=load, clock=clock, seed=3), clock, proc_root)
    clock.advance(1.0)
    idle = collector.collect_sync()
    load.busy = 0.8
    clock.advance(1.0)
    busy = collector.collect_sync()
    assert value(idle, "campwatch_gpu_utilization_ratio") < 0.02
    assert value(idle, "campwatch_gpu_power_watts") == pytest.approx(70.0, abs=15.0)
    assert value(idle, "campwatch_gpu_throttle_active", 0, reason="gpu_idle") == 1.0
    assert value(busy, "campwatch_gpu_utilization_ratio") == pytest.approx(0.8, abs=0.12)
    assert value(busy, "campwatch_gpu_power_watts") == pytest.approx(70 + 630 * 0.8, abs=90.0)
    assert 70.0 * 0.9 <= value(busy, "campwatch_gpu_power_watts") <= 700.0
    assert value(busy, "campwatch_gpu_memory_used_bytes") == pytest.approx(0.9 * TOTAL, rel=0.02)
    assert value(idle, "campwatch_gpu_memory_used_bytes") == pytest.approx(0.9 * TOTAL, rel=0.02)
    assert value(busy, "campwatch_gpu_memory_total_bytes") == TOTAL


def test_energy_accumulates_power_over_elapsed_time(clock: FakeClock, proc_root: Path) -> None:
    collector = _collector(SimulatedGpu(load=Load(1.0), clock=clock), clock, proc_root)
    collector.collect_sync()
    powers = []
    for _ in range(10):
        clock.advance(2.0)
        out = collector.collect_sync()
        powers.append(value(out, "campwatch_gpu_power_watts"))
    energy = value(out, "campwatch_gpu_energy_joules_total")
    assert energy == pytest.approx(20.0 * sum(powers) / len(powers), rel=0.05)
    assert 20.0 * 600 < energy <= 20.0 * 700


def test_the_simulated_board_lacks_a_fan_like_an_sxm_h100(clock: FakeClock, proc_root: Path) -> None:
    collector = _collector(SimulatedGpu(clock=clock), clock, proc_root)
    out = collector.collect_sync()
    assert not points_named(out, "campwatch_gpu_fan_speed_ratio")
    assert collector.unsupported_fields(0)["fan_speed_ratio"] == "not supported"


def test_the_simulated_h100_reports_gpm_activity_below_its_utilization(clock: FakeClock, proc_root: Path) -> None:
    collector = _collector(SimulatedGpu(load=lambda: 0.9, clock=clock), clock, proc_root)
    clock.advance(2.0)
    out = collector.collect_sync()
    util = value(out, "campwatch_gpu_utilization_ratio")
    assert value(out, "campwatch_gpu_sm_active_ratio") == pytest.approx(0.8 * util)
    assert value(out, "campwatch_gpu_tensor_active_ratio") == pytest.approx(0.45 * util)
    assert 0.0 < value(out, "campwatch_gpu_sm_active_ratio") < util


def test_the_simulated_board_counts_time_throttled_per_reason_like_nvml(clock: FakeClock, proc_root: Path) -> None:
    load = Load(0.0)
    collector = _collector(SimulatedGpu(load=load, clock=clock, seed=1), clock, proc_root)
    collector.collect_sync()
    for _ in range(5):
        clock.advance(2.0)
        out = collector.collect_sync()
    # idle for 10 s: held at low clocks the whole time, never power-capped
    assert value(out, "campwatch_gpu_throttle_seconds_total", reason="low_utilization") == pytest.approx(10.0)
    assert value(out, "campwatch_gpu_throttle_seconds_total", reason="power") == 0.0
    assert value(out, "campwatch_gpu_throttle_seconds_total", reason="thermal") == 0.0


def test_the_simulated_board_sends_nvlink_bytes_in_proportion_to_its_load(clock: FakeClock, proc_root: Path) -> None:
    collector = _collector(SimulatedGpu(load=Load(0.5), clock=clock, seed=2), clock, proc_root)
    out = collector.collect_sync()
    sent = 0.0
    for _ in range(4):
        busy = value(out, "campwatch_gpu_utilization_ratio")  # holds until the next snapshot
        clock.advance(1.0)
        out = collector.collect_sync()
        sent += 2.5e10 * busy * 1.0
    assert value(out, "campwatch_gpu_nvlink_tx_bytes_total") == pytest.approx(sent)
    assert value(out, "campwatch_gpu_nvlink_rx_bytes_total") == pytest.approx(sent)
    assert value(out, "campwatch_gpu_nvlink_replay_errors_total") == 0.0


def test_a_failing_load_source_reads_as_idle(clock: FakeClock, proc_root: Path) -> None:
    def broken() -> float:
        raise RuntimeError("model server gone")

    out = _collector(SimulatedGpu(load=broken, clock=clock), clock, proc_root).collect_sync()
    assert value(out, "campwatch_gpu_utilization_ratio") < 0.02


def test_injected_xids_are_counted(clock: FakeClock, proc_root: Path) -> None:
    sim = SimulatedGpu(count=2, clock=clock)
    collector = _collector(sim, clock, proc_root)
    sim.inject_xid(1, 31)
    sim.inject_xid(1, 31)
    out = collector.collect_sync()
    assert value(out, "campwatch_gpu_xid_errors_total", 1, xid="31") == 2.0


def test_the_demo_process_is_the_simulated_gpu_user(clock: FakeClock, proc_root: Path) -> None:
    out = _collector(SimulatedGpu(clock=clock, pid=77), clock, proc_root).collect_sync()
    assert value(out, "campwatch_gpu_process_memory_bytes", 0, pid="77", process="simulated-vllm") > 0.8 * TOTAL


def test_bad_simulation_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="count"):
        SimulatedGpu(count=0)
    with pytest.raises(ValueError, match="Simulated"):
        SimulatedGpu(model="NVIDIA H100 80GB HBM3")
