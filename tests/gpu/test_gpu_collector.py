"""The GPU collector against the fake libnvidia-ml.so.1 (real pynvml code, scenario-driven values)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.catalog import CATALOG
from agent.collectors.gpu.fields import BUNDLED_FIELDS
from agent.concepts.gpu import GPU_STORED_FIELDS
from tests.gpu.gpu_helpers import GpuRun, gpu_rows, has, points_named, value

H100_TOTAL = 85520809984.0
H100_USED = 76965813248.0
H100_RESERVED = 553648128.0


def test_an_h100_host_exports_the_scenario_values_in_base_units(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("h100_8gpu")
    gpu_run.tick(2)
    out = collector.collect_sync()
    for gpu in range(8):
        assert value(out, "campwatch_gpu_up", gpu) == 1.0
        assert value(out, "campwatch_gpu_utilization_ratio", gpu) == pytest.approx(0.88)
        assert value(out, "campwatch_gpu_memory_utilization_ratio", gpu) == pytest.approx(0.51)
        assert value(out, "campwatch_gpu_memory_used_bytes", gpu) == H100_USED
        assert value(out, "campwatch_gpu_memory_total_bytes", gpu) == H100_TOTAL
        assert value(out, "campwatch_gpu_memory_reserved_bytes", gpu) == H100_RESERVED
        assert value(out, "campwatch_gpu_memory_free_bytes", gpu) == H100_TOTAL - H100_USED - H100_RESERVED
        assert value(out, "campwatch_gpu_power_watts", gpu) == 655.0
        assert value(out, "campwatch_gpu_power_instant_watts", gpu) == 690.0
        assert value(out, "campwatch_gpu_power_limit_watts", gpu) == 700.0
        assert value(out, "campwatch_gpu_temperature_celsius", gpu) == 58.0
        assert value(out, "campwatch_gpu_memory_temperature_celsius", gpu) == 63.0
        assert value(out, "campwatch_gpu_sm_clock_hz", gpu) == 1980e6
        assert value(out, "campwatch_gpu_memory_clock_hz", gpu) == 2619e6
        assert value(out, "campwatch_gpu_pcie_tx_bytes_per_second", gpu) == 52000 * 1024
        assert value(out, "campwatch_gpu_pcie_rx_bytes_per_second", gpu) == 210000 * 1024
        assert value(out, "campwatch_gpu_pcie_replay_errors_total", gpu) == 0.0
        assert value(out, "campwatch_gpu_mig_enabled", gpu) == 0.0
    assert value(out, "campwatch_gpu_ecc_corrected_errors_total", 3) == 2.0
    assert value(out, "campwatch_gpu_ecc_corrected_errors_total", 2) == 0.0


def test_points_carry_the_gpu_labels(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("h100_8gpu")
    out = collector.collect_sync()
    (up,) = [p for p in points_named(out, "campwatch_gpu_up") if dict(p.labels)["gpu"] == "5"]
    assert dict(up.labels) == {"host": "node-a", "gpu": "5", "uuid": "GPU-00000000-0000-4000-8000-000000000005",
                               "model": "NVIDIA H100 80GB HBM3", "pci_bus_id": "00000000:68:00.0"}


@pytest.mark.parametrize("scenario", ["h100_8gpu", "a100_mig", "failing_gpu"])
def test_every_point_has_a_catalog_family_with_exactly_its_labels(gpu_run: GpuRun, scenario: str) -> None:
    collector = gpu_run.collector(scenario)
    names = set()
    for out in gpu_run.cycles(collector, 4):
        for point in out.points:
            assert {k for k, _ in point.labels} == set(CATALOG[point.name].labels), point.name
            names.add(point.name)
    assert len(names) > 20


def test_rows_hold_one_sample_per_gpu_with_the_stored_field_names(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("h100_8gpu")
    gpu_run.tick(3)
    out = collector.collect_sync()
    assert out.source == "gpu"
    assert [row.gpu_index for row in gpu_rows(out)] == list(range(8))
    row = gpu_rows(out)[4]
    assert row.up and not row.simulated
    assert row.host == "node-a" and row.model == "NVIDIA H100 80GB HBM3" and row.pci_bus_id == "00000000:58:00.0"
    assert set(GPU_STORED_FIELDS) <= set(row.values)
    assert row.values["utilization_ratio"] == pytest.approx(0.97)
    assert row.values["power_watts"] == 699.0
    assert row.values["throttle_reasons_bitmask"] == 4.0
    assert row.values["xid_errors_total"] == 0.0


def test_throttle_reasons_are_decoded_into_one_series_per_reason(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("h100_8gpu")
    idle = collector.collect_sync()
    gpu_run.tick(3)
    capped = collector.collect_sync()
    reasons = {dict(p.labels)["reason"]: p.value for p in points_named(capped, "campwatch_gpu_throttle_active")
               if dict(p.labels)["gpu"] == "0"}
    assert reasons["sw_power_cap"] == 1.0
    assert sum(reasons.values()) == 1.0
    assert set(reasons) >= {"sw_power_cap", "hw_slowdown", "hw_thermal", "sw_thermal", "hw_power_brake",
                            "gpu_idle"}
    assert value(idle, "campwatch_gpu_throttle_active", 0, reason="gpu_idle") == 1.0
    assert value(idle, "campwatch_gpu_throttle_active", 0, reason="sw_power_cap") == 0.0


def test_unsupported_fields_are_skipped_recorded_and_never_asked_again(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("h100_8gpu")
    outs = gpu_run.cycles(collector, 4)
    for out in outs:
        assert not points_named(out, "campwatch_gpu_fan_speed_ratio")
        assert not points_named(out, "campwatch_gpu_retired_pages_single_bit")
        assert "fan_speed_ratio" not in gpu_rows(out)[0].values
    assert collector.unsupported_fields(0) == {
        "fan_speed_ratio": "not supported", "retired_pages_single_bit": "not supported",
        "retired_pages_double_bit": "not supported", "retired_pages_pending": "not supported",
    }
    assert gpu_run.fake.calls("nvmlDeviceGetFanSpeed") == 8  # once per GPU, in the first cycle
    assert gpu_run.fake.calls("nvmlDeviceGetPowerUsage") == 8 * 4


def test_a_cycle_does_not_rediscover_the_gpus(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("h100_8gpu")
    discovery = {f: gpu_run.fake.calls(f) for f in ("nvmlDeviceGetCount_v2", "nvmlDeviceGetHandleByIndex_v2",
                                                     "nvmlDeviceGetUUID", "nvmlDeviceGetName",
                                                     "nvmlDeviceGetPciInfo_v3", "nvmlInitWithFlags")}
    gpu_run.cycles(collector, 5)
    assert {f: gpu_run.fake.calls(f) for f in discovery} == discovery


def test_energy_is_the_sum_of_counter_differences(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("h100_8gpu")
    outs = gpu_run.cycles(collector, 5)
    totals = [value(out, "campwatch_gpu_energy_joules_total", 6) for out in outs]
    # one step is one second of the scenario's power: 72, 310, 655, 699 W
    assert totals == [0.0, 72.0, 382.0, 1037.0, 1736.0]
    assert gpu_rows(outs[-1])[6].values["energy_joules_total"] == 1736.0


def test_an_energy_counter_reset_adds_no_negative_and_no_spike(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("failing_gpu")
    outs = gpu_run.cycles(collector, 6)
    totals = [value(out, "campwatch_gpu_energy_joules_total", 0) for out in outs]
    # raw counter (J): 5000, 5400, 5800, then the driver reloads: 1, 401, 801
    assert totals == [0.0, 400.0, 800.0, 801.0, 1201.0, 1601.0]


def test_processes_are_labelled_and_bounded_to_the_top_n_by_memory(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("h100_8gpu", top_processes=1)
    gpu_run.tick()
    out = collector.collect_sync()
    memory = [p for p in points_named(out, "campwatch_gpu_process_memory_bytes") if dict(p.labels)["gpu"] == "0"]
    assert len(memory) == 1
    labels = dict(memory[0].labels)
    assert (labels["pid"], labels["process"], labels["container"]) == ("4101", "VLLM::Worker_TP0", "")
    assert memory[0].value == 76e9
    assert value(out, "campwatch_gpu_process_utilization_ratio", 0, pid="4101") == pytest.approx(0.35)
    assert len(points_named(out, "campwatch_gpu_process_memory_bytes")) == 8


def test_process_identity_and_container_come_from_proc(gpu_run: GpuRun) -> None:
    container = "4f1c" * 16
    proc = gpu_run.proc_root / "4100"
    proc.mkdir()
    (proc / "comm").write_text("vllm\n")
    (proc / "cgroup").write_text(f"0::/system.slice/docker-{container}.scope\n")
    collector = gpu_run.collector("h100_8gpu")
    out = collector.collect_sync()
    assert value(out, "campwatch_gpu_process_memory_bytes", 0, pid="4100", process="vllm",
                 container=container) == 524288000.0


def test_processes_can_be_turned_off(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("h100_8gpu", top_processes=0)
    out = collector.collect_sync()
    assert not points_named(out, "campwatch_gpu_process_memory_bytes")
    assert gpu_run.fake.calls("nvmlDeviceGetComputeRunningProcesses_v3") == 0


def test_a_field_commented_out_in_the_fields_file_is_not_read(gpu_run: GpuRun, tmp_path: Path) -> None:
    text = BUNDLED_FIELDS.read_text().replace("pcie_tx_bytes", "# pcie_tx_bytes").replace(
        "pcie_rx_bytes", "# pcie_rx_bytes")
    fields = tmp_path / "fields.csv"
    fields.write_text(text)
    collector = gpu_run.collector("h100_8gpu", fields_file=str(fields))
    out = collector.collect_sync()
    assert not points_named(out, "campwatch_gpu_pcie_tx_bytes_per_second")
    assert gpu_run.fake.calls("nvmlDeviceGetPcieThroughput") == 0
    assert has(out, "campwatch_gpu_power_watts")


def test_xid_errors_are_counted_per_code_from_a_non_blocking_event_poll(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("failing_gpu")
    outs = gpu_run.cycles(collector, 5)
    assert gpu_run.fake.last_wait_timeout_ms == 0
    first, last = outs[1], outs[-1]
    assert value(first, "campwatch_gpu_xid_errors_total", 3, xid="13") == 1.0
    assert value(last, "campwatch_gpu_xid_errors_total", 3, xid="13") == 2.0  # a counter, not the last value
    assert value(last, "campwatch_gpu_xid_errors_total", 3, xid="48") == 1.0
    assert value(last, "campwatch_gpu_xid_errors_total", 1, xid="79") == 1.0  # counted while the GPU is down
    assert gpu_rows(last)[3].values["xid_errors_total"] == 3.0
    assert not has(last, "campwatch_gpu_xid_errors_total", 0)


def test_a_lost_gpu_goes_down_alone_and_comes_back_after_backoff(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("failing_gpu")
    outs = gpu_run.cycles(collector, 7)
    ups = [[value(out, "campwatch_gpu_up", gpu) for gpu in range(4)] for out in outs]
    assert [u[1] for u in ups] == [1, 1, 0, 0, 0, 1, 1]  # lost at step 2, answers again from step 5
    assert all(u[0] == u[2] == u[3] == 1 for u in ups)
    down = outs[3]
    assert not gpu_rows(down)[1].up and gpu_rows(down)[1].values == {}
    assert gpu_rows(down)[1].uuid == "GPU-00000000-0000-4000-8000-000000000001"
    assert not has(down, "campwatch_gpu_power_watts", 1)  # a gap, not stale values
    assert value(down, "campwatch_gpu_power_watts", 0) == 400.0
    # lost at t=2: retried at t=3 (fails, next wait 2 s), then at t=5, when it answers
    assert gpu_run.fake.calls("nvmlDeviceGetHandleByUUID") == 2
    assert gpu_rows(outs[5])[1].up and gpu_rows(outs[5])[1].values["power_watts"] == 400.0


def test_the_retry_backoff_doubles_up_to_a_ceiling(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("devices = 2\ngpu1.error = * GpuIsLost 1\n")
    gpu_run.cycles(collector, 200)
    # lost at t=1; retries at t=2, 4, 8, 16, 32, 64, then every 60 s: 124, 184
    assert gpu_run.fake.calls("nvmlDeviceGetHandleByUUID") == 8


def test_an_unknown_error_marks_only_that_gpu_down(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("devices = 2\ngpu0.error = nvmlDeviceGetTemperature Unknown 1 1\n")
    outs = gpu_run.cycles(collector, 3)
    assert [value(o, "campwatch_gpu_up", 0) for o in outs] == [1, 0, 1]
    assert [value(o, "campwatch_gpu_up", 1) for o in outs] == [1, 1, 1]


def test_a_gpu_lost_at_discovery_is_reported_down_then_picked_up(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("devices = 2\ngpu1.error = nvmlDeviceGetHandleByIndex_v2 GpuIsLost 0 0\n")
    outs = gpu_run.cycles(collector, 2)
    assert not gpu_rows(outs[0])[1].up and gpu_rows(outs[0])[1].uuid == ""
    assert value(outs[0], "campwatch_gpu_up", 1) == 0.0
    assert gpu_rows(outs[1])[1].up and gpu_rows(outs[1])[1].uuid == "GPU-00000000-0000-4000-8000-000000000001"
    assert value(outs[1], "campwatch_gpu_utilization_ratio", 1) == 0.5


def test_no_permission_skips_the_field_with_one_warning(gpu_run: GpuRun, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agent.collectors.gpu")
    collector = gpu_run.collector("failing_gpu")
    outs = gpu_run.cycles(collector, 3)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "privileges" in r.getMessage()]
    assert len(warnings) == 1 and "GPU 2" in warnings[0].getMessage()
    assert collector.unsupported_fields(2)["process_memory_bytes"] == "no permission"
    assert all(not has(o, "campwatch_gpu_process_memory_bytes", 2) for o in outs)
    assert value(outs[0], "campwatch_gpu_up", 2) == 1.0
    assert not has(outs[0], "campwatch_gpu_power_watts", 2)  # power unsupported there, not zero
    assert "power_watts" not in gpu_rows(outs[0])[2].values


def test_a_100_with_mig_reports_each_instance(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("a100_mig")
    out = collector.collect_sync()
    assert value(out, "campwatch_gpu_mig_enabled") == 1.0
    used = {dict(p.labels)["mig_profile"]: (p.value, dict(p.labels))
            for p in points_named(out, "campwatch_gpu_mig_memory_used_bytes")}
    assert set(used) == {"3g.20gb", "2g.10gb", "1g.5gb"}
    value_3g, labels_3g = used["3g.20gb"]
    assert value_3g == 18e9
    assert (labels_3g["gpu_instance"], labels_3g["compute_instance"]) == ("1", "0")
    assert labels_3g["mig_uuid"] == "MIG-11111111-1111-4111-8111-111111111111"
    assert value(out, "campwatch_gpu_mig_memory_total_bytes", 0, mig_profile="1g.5gb") == 4899995648.0
    # an A100 has no per-instance utilization: skipped, not zero; no whole-GPU utilization in MIG mode either
    assert not points_named(out, "campwatch_gpu_mig_utilization_ratio")
    assert not points_named(out, "campwatch_gpu_utilization_ratio")
    assert collector.unsupported_fields(0)["mig_utilization_ratio"] == "not supported"
    pids = {dict(p.labels)["pid"] for p in points_named(out, "campwatch_gpu_process_memory_bytes")}
    assert pids == {"5001", "5002"}


def test_mig_utilization_is_exported_where_nvml_reports_it(gpu_run: GpuRun) -> None:
    slots = "\n".join(f"gpu0.mig{i}.utilization_gpu = {10 * (i + 1)}\ngpu0.mig{i}.utilization_memory = 5"
                      for i in range(2))
    collector = gpu_run.collector(f"devices = 1\ngpu0.mig_mode = 1\n{slots}\n")
    out = collector.collect_sync()
    utils = sorted(p.value for p in points_named(out, "campwatch_gpu_mig_utilization_ratio"))
    assert utils == [pytest.approx(0.1), pytest.approx(0.2)]


def test_enabling_mig_is_picked_up_without_a_restart(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("devices = 1\ngpu0.mig_mode = 0 0 1\ngpu0.mig0.memory_used = 1000\n")
    outs = gpu_run.cycles(collector, 3)
    assert [len(points_named(o, "campwatch_gpu_mig_memory_used_bytes")) for o in outs] == [0, 0, 1]


def test_old_drivers_fall_back_to_v1_memory_and_the_old_throttle_call(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector(
        "devices = 1\ngpu0.clock_event_reasons = 8\n"
        "gpu0.error = nvmlDeviceGetMemoryInfo_v2 FunctionNotFound\n"
        "gpu0.error = nvmlDeviceGetCurrentClocksEventReasons FunctionNotFound\n")
    outs = gpu_run.cycles(collector, 2)
    for out in outs:
        assert value(out, "campwatch_gpu_memory_total_bytes") == H100_TOTAL
        assert value(out, "campwatch_gpu_throttle_active", 0, reason="hw_slowdown") == 1.0
    assert collector.unsupported_fields(0).get("memory_reserved_bytes") == "not supported"
    assert gpu_run.fake.calls("nvmlDeviceGetMemoryInfo_v2") == 1
    assert gpu_run.fake.calls("nvmlDeviceGetCurrentClocksThrottleReasons") == 2


async def test_collect_runs_a_cycle_off_the_event_loop_and_close_shuts_nvml_down(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("h100_8gpu")
    before = gpu_run.fake.init_count
    out = await collector.collect()
    assert len(out.rows) == 8
    await collector.close()
    assert gpu_run.fake.init_count == before - 1
    gpu_run.collectors.remove(collector)
