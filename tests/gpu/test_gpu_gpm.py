"""Profiling-grade activity (GPM), NVLink counters and time throttled per reason, through the real
pynvml code against the fake libnvidia-ml.so.1 (scenarios h100_8gpu and a100_4gpu)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.collectors.gpu.fields import BUNDLED_FIELDS
from agent.collectors.gpu.inventory import describe_gpus
from agent.collectors.gpu.nvml import NvmlDriver
from agent.collectors.gpu.sources import DEVICE_READINGS
from tests.gpu.gpu_helpers import FakeNvml, GpuRun, gpu_rows, has, points_named, value

MIB = 1024.0 * 1024.0
GPM_METRICS = tuple(f"campwatch_gpu_{field}" for field in DEVICE_READINGS["gpm"])


def _fields_without(tmp_path: Path, readings: tuple[str, ...]) -> str:
    """The bundled fields file with the fields of `readings` commented out (collection as before them)."""
    dropped = {f for r in readings for f in DEVICE_READINGS[r]}
    lines = [("# " + line if line.split(",")[0].strip() in dropped else line)
             for line in BUNDLED_FIELDS.read_text(encoding="utf-8").splitlines()]
    path = tmp_path / "fields.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_an_h100_exports_gpm_activity_averaged_over_the_interval_since_the_previous_sample(
        gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("h100_8gpu")  # primed at step 0
    gpu_run.tick(2)
    first = collector.collect_sync()  # covers steps 1 and 2: the mean of the configured figures
    for gpu in range(8):
        assert value(first, "campwatch_gpu_sm_active_ratio", gpu) == pytest.approx((0.30 + 0.72) / 2)
        assert value(first, "campwatch_gpu_sm_occupancy_ratio", gpu) == pytest.approx((0.12 + 0.35) / 2)
        assert value(first, "campwatch_gpu_tensor_active_ratio", gpu) == pytest.approx((0.18 + 0.44) / 2)
        assert value(first, "campwatch_gpu_dram_bandwidth_ratio", gpu) == pytest.approx((0.25 + 0.61) / 2)
        assert value(first, "campwatch_gpu_pcie_tx_average_bytes_per_second", gpu) == pytest.approx(48 * MIB)
        assert value(first, "campwatch_gpu_pcie_rx_average_bytes_per_second", gpu) == pytest.approx(195 * MIB)
        assert value(first, "campwatch_gpu_nvlink_tx_bytes_per_second", gpu) == pytest.approx(15000 * MIB)
        assert value(first, "campwatch_gpu_nvlink_rx_bytes_per_second", gpu) == pytest.approx(15150 * MIB)
    gpu_run.tick(1)
    second = collector.collect_sync()  # step 3 only
    assert value(second, "campwatch_gpu_sm_active_ratio", 5) == pytest.approx(0.80)
    assert value(second, "campwatch_gpu_tensor_active_ratio", 5) == pytest.approx(0.52)
    assert value(second, "campwatch_gpu_dram_bandwidth_ratio", 5) == pytest.approx(0.70)
    # the point of GPM: the GPU reads 97 % "utilized" while only 80 % of its SMs are busy
    assert value(second, "campwatch_gpu_utilization_ratio", 5) == pytest.approx(0.97)


def test_each_cycle_takes_one_gpm_sample_per_gpu_and_allocates_nothing_new(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("h100_8gpu")
    assert gpu_run.fake.calls("nvmlGpmSampleAlloc") == 16  # two buffers per GPU, once
    assert gpu_run.fake.calls("nvmlGpmSampleGet") == 8  # the base sample, taken at start
    gpu_run.cycles(collector, 5)
    assert gpu_run.fake.calls("nvmlGpmSampleGet") == 8 + 8 * 5
    assert gpu_run.fake.calls("nvmlGpmMetricsGet") == 8 * 5
    assert gpu_run.fake.calls("nvmlGpmSampleAlloc") == 16
    assert gpu_run.fake.calls("nvmlGpmQueryDeviceSupport") == 8
    collector._close()
    assert gpu_run.fake.calls("nvmlGpmSampleFree") == 16


def test_gpm_values_are_stored_in_the_gpu_rows(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("h100_8gpu")
    gpu_run.tick(3)
    row = gpu_rows(collector.collect_sync())[2]
    assert row.values["sm_active_ratio"] == pytest.approx((0.30 + 0.72 + 0.80) / 3)
    assert row.values["nvlink_tx_bytes_per_second"] == pytest.approx(18000 * MIB)


def test_an_a100_without_gpm_collects_exactly_what_it_did_before_gpm_existed(
        gpu_run: GpuRun, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agent.collectors.gpu")
    now = gpu_run.cycles(gpu_run.collector("a100_4gpu"), 3)
    gpm_logs = [r for r in caplog.records if "gpm" in r.getMessage()]
    assert len(gpm_logs) == 4  # one line per GPU, at start, and none per cycle
    assert all(r.levelno == logging.INFO for r in gpm_logs)
    gpu_run.fake.reset_calls()
    before = gpu_run.cycles(gpu_run.collector("a100_4gpu", fields_file=_fields_without(tmp_path, ("gpm",))), 3)
    for out in now:
        assert not any(points_named(out, name) for name in GPM_METRICS)
        assert all(name not in gpu_rows(out)[0].values for name in DEVICE_READINGS["gpm"])
    assert [sorted((p.name, p.labels, p.value) for p in out.points) for out in now] == \
        [sorted((p.name, p.labels, p.value) for p in out.points) for out in before]
    assert [gpu_rows(out)[1].values for out in now] == [gpu_rows(out)[1].values for out in before]


def test_a_gpu_without_gpm_is_never_sampled(gpu_run: GpuRun) -> None:
    gpu_run.cycles(gpu_run.collector("a100_4gpu"), 4)
    assert gpu_run.fake.calls("nvmlGpmQueryDeviceSupport") == 4
    assert gpu_run.fake.calls("nvmlGpmSampleAlloc") == 0
    assert gpu_run.fake.calls("nvmlGpmSampleGet") == 0


def test_a_pre_hopper_gpu_on_a_gpm_driver_reports_gpm_absent_not_zero(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("a100_mig")  # the driver has GPM; the GPU says it is unsupported
    out = gpu_run.cycles(collector, 2)[-1]
    assert not any(has(out, name) for name in GPM_METRICS)
    assert collector.unsupported_fields(0)["sm_active_ratio"] == "not supported"


def test_throttle_time_counters_rise_by_the_configured_nanoseconds(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("h100_8gpu")
    gpu_run.tick(2)
    outs = gpu_run.cycles(collector, 3)  # steps 2, 3, 4
    power = [value(out, "campwatch_gpu_throttle_seconds_total", 1, reason="power") for out in outs]
    assert power == [0.0, 0.6, 1.6]
    assert [value(out, "campwatch_gpu_throttle_seconds_total", 1, reason="app_clocks") for out in outs] == \
        [0.0, 0.6, 1.6]
    assert value(outs[-1], "campwatch_gpu_throttle_seconds_total", 1, reason="low_utilization") == 0.9
    assert value(outs[-1], "campwatch_gpu_throttle_seconds_total", 1, reason="thermal") == 0.0
    reasons = {dict(p.labels)["reason"] for p in points_named(outs[-1], "campwatch_gpu_throttle_seconds_total")
               if dict(p.labels)["gpu"] == "1"}
    assert reasons == {"power", "thermal", "sync_boost", "board_limit", "low_utilization", "reliability",
                       "app_clocks", "base_clocks"}


def test_a_throttle_reason_the_gpu_does_not_report_is_absent_and_asked_once(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("devices = 1\ngpu0.violation_reliability_ns = unsupported\n"
                                  "gpu0.violation_thermal_ns = 2500000000\n")
    outs = gpu_run.cycles(collector, 3)
    for out in outs:
        assert value(out, "campwatch_gpu_throttle_seconds_total", reason="thermal") == 2.5
        assert not [p for p in points_named(out, "campwatch_gpu_throttle_seconds_total")
                    if dict(p.labels)["reason"] == "reliability"]
    assert collector.unsupported_fields(0)["throttle_reliability_seconds_total"] == "not supported"
    assert gpu_run.fake.calls("nvmlDeviceGetViolationStatus") == 8 + 7 * 2


def test_a_gpu_without_violation_counters_logs_one_line_and_stops_asking(
        gpu_run: GpuRun, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agent.collectors.gpu")
    collector = gpu_run.collector("devices = 1\ngpu0.error = nvmlDeviceGetViolationStatus NotSupported\n")
    out = gpu_run.cycles(collector, 4)[-1]
    assert not points_named(out, "campwatch_gpu_throttle_seconds_total")
    assert len([r for r in caplog.records if "throttle_power_seconds_total" in r.getMessage()]) == 1
    assert gpu_run.fake.calls("nvmlDeviceGetViolationStatus") == 8


def test_nvlink_counters_are_read_in_bytes_where_gpm_is_absent(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("a100_4gpu")
    gpu_run.tick(2)
    out = collector.collect_sync()
    assert value(out, "campwatch_gpu_nvlink_tx_bytes_total", 3) == 2097152 * 1024.0
    assert value(out, "campwatch_gpu_nvlink_rx_bytes_total", 3) == 4194304 * 1024.0
    assert value(out, "campwatch_gpu_nvlink_replay_errors_total", 3) == 0.0
    assert value(out, "campwatch_gpu_throttle_seconds_total", 3, reason="power") == 0.75


def test_nvlink_error_counters_pass_the_configured_counts_on(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("devices = 1\ngpu0.nvlink_crc_flit_errors = 0 4\ngpu0.nvlink_crc_data_errors = 1\n"
                                  "gpu0.nvlink_replay_errors = 0 0 7\ngpu0.nvlink_recovery_errors = 2\n")
    out = gpu_run.cycles(collector, 3)[-1]
    assert [value(out, f"campwatch_gpu_nvlink_{kind}_errors_total")
            for kind in ("crc_flit", "crc_data", "replay", "recovery")] == [4.0, 1.0, 7.0, 2.0]


def test_a_board_without_nvlink_has_no_nvlink_series_and_one_log_line(
        gpu_run: GpuRun, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agent.collectors.gpu")
    unsupported = "".join(f"gpu0.nvlink_{k} = unsupported\n" for k in (
        "tx_kib", "rx_kib", "crc_flit_errors", "crc_data_errors", "replay_errors", "recovery_errors"))
    collector = gpu_run.collector("devices = 1\ngpu0.name = NVIDIA L40S\n" + unsupported)
    out = gpu_run.cycles(collector, 3)[-1]
    assert not [p for p in out.points if p.name.startswith("campwatch_gpu_nvlink_")]
    assert has(out, "campwatch_gpu_pcie_tx_bytes_per_second")
    assert len([r for r in caplog.records if "nvlink_tx_bytes_total" in r.getMessage()]) == 1


def test_a_gpu_that_comes_back_gets_fresh_gpm_samples_and_frees_the_old_ones(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("devices = 2\ngpu*.gpm = 1\ngpu*.gpm_sm_active = 40 40 40 40 40 90\n"
                                  "gpu1.error = * GpuIsLost 1 2\n")
    outs = gpu_run.cycles(collector, 6)
    assert value(outs[0], "campwatch_gpu_up", 1) == 1.0 and value(outs[1], "campwatch_gpu_up", 1) == 0.0
    back = next(i for i, out in enumerate(outs) if i > 1 and value(out, "campwatch_gpu_up", 1) == 1.0)
    assert value(outs[-1], "campwatch_gpu_sm_active_ratio", 1) == pytest.approx(0.90)
    assert value(outs[back], "campwatch_gpu_sm_active_ratio", 1) == pytest.approx(0.40)
    assert gpu_run.fake.calls("nvmlGpmSampleAlloc") == 6  # two at start per GPU, two more on return
    collector._close()
    assert gpu_run.fake.calls("nvmlGpmSampleFree") == 6


def test_a_transient_failure_at_start_leaves_gpm_on_and_primes_it_on_the_first_cycle(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("devices = 1\ngpu0.gpm = 1\ngpu0.gpm_tensor_active = 10 20 30 40\n"
                                  "gpu0.error = nvmlGpmSampleGet Unknown 0 0\n")  # only while starting
    gpu_run.tick()
    first, second = gpu_run.cycles(collector, 2)
    assert value(first, "campwatch_gpu_up") == 1.0  # the rest of the GPU is read as usual
    assert not has(first, "campwatch_gpu_tensor_active_ratio")  # primed now, metrics next cycle
    assert value(second, "campwatch_gpu_tensor_active_ratio") == pytest.approx(0.30)
    assert "tensor_active_ratio" not in collector.unsupported_fields(0)


def test_campwatch_gpus_says_per_gpu_whether_gpm_works_and_why_not(fake_nvml: FakeNvml) -> None:
    fake_nvml.load("h100_8gpu")
    assert {g.gpm for g in describe_gpus(NvmlDriver())} == {"yes"}
    fake_nvml.load("a100_4gpu")
    assert {g.gpm for g in describe_gpus(NvmlDriver())} == {"no: the driver has no GPM calls (needs R520 or newer)"}
    fake_nvml.load("a100_mig")
    (gpu,) = describe_gpus(NvmlDriver())
    assert gpu.gpm == "no: the GPU has no GPM (Hopper or newer only)"
    assert fake_nvml.calls("nvmlGpmSampleAlloc") == fake_nvml.calls("nvmlGpmSampleFree")


def test_the_eight_throttle_time_fields_are_one_counter_family_labelled_by_reason() -> None:
    from agent.catalog import CATALOG
    from agent.collectors.gpu.catalog import GPU_METRICS

    spec = CATALOG["campwatch_gpu_throttle_seconds_total"]
    assert (spec.kind, spec.labels[-1]) == ("counter", "reason")
    assert [m.name for m in GPU_METRICS].count("campwatch_gpu_throttle_seconds_total") == 1
    assert "by reason" in spec.help


def test_commenting_out_one_throttle_reason_drops_only_that_reason(gpu_run: GpuRun, tmp_path: Path) -> None:
    text = BUNDLED_FIELDS.read_text(encoding="utf-8").replace("throttle_thermal_seconds_total,",
                                                             "# throttle_thermal_seconds_total,")
    (tmp_path / "f.csv").write_text(text, encoding="utf-8")
    out = gpu_run.collector("h100_8gpu", fields_file=str(tmp_path / "f.csv")).collect_sync()
    reasons = {dict(p.labels)["reason"] for p in points_named(out, "campwatch_gpu_throttle_seconds_total")
               if dict(p.labels)["gpu"] == "0"}
    assert reasons == {"power", "sync_boost", "board_limit", "low_utilization", "reliability", "app_clocks",
                       "base_clocks"}


def test_gpm_refused_for_permission_is_absent_and_recorded_as_no_permission(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("devices = 1\nerror = nvmlGpmQueryDeviceSupport NoPermission\n")
    out = gpu_run.cycles(collector, 2)[-1]
    assert not any(has(out, name) for name in GPM_METRICS)
    assert collector.unsupported_fields(0)["sm_active_ratio"] == "no permission"
    assert gpu_run.fake.calls("nvmlGpmSampleAlloc") == gpu_run.fake.calls("nvmlGpmSampleFree")
