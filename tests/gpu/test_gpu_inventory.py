"""`campwatch gpus`: which GPUs are there and which fields each supports."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from agent.collectors.gpu.inventory import describe_gpus, render_gpus
from agent.collectors.gpu.nvml import NvmlDriver
from agent.errors import NvmlUnavailable
from agent.sim.gpu import SimulatedGpu
from tests.gpu.gpu_helpers import FakeNvml


def test_an_h100_host_lists_eight_gpus_and_their_unsupported_fields(fake_nvml: FakeNvml) -> None:
    fake_nvml.load("h100_8gpu")
    inventory = describe_gpus(NvmlDriver())
    assert [g.index for g in inventory] == list(range(8))
    gpu = inventory[0]
    assert (gpu.model, gpu.pci_bus_id, gpu.mig_mode, gpu.readable) == (
        "NVIDIA H100 80GB HBM3", "00000000:18:00.0", "disabled", True)
    assert set(gpu.unsupported) == {"fan_speed_ratio", "retired_pages_single_bit", "retired_pages_double_bit",
                                    "retired_pages_pending"}
    assert {"utilization_ratio", "power_watts", "energy_joules_total", "xid_errors_total",
            "process_memory_bytes"} <= set(gpu.supported)
    assert gpu.not_applicable == ("mig_memory_used_bytes", "mig_memory_total_bytes", "mig_utilization_ratio")
    assert fake_nvml.init_count == 0  # opened and closed


def test_an_a100_lists_its_mig_instances(fake_nvml: FakeNvml) -> None:
    fake_nvml.load("a100_mig")
    (gpu,) = describe_gpus(NvmlDriver())
    assert gpu.mig_mode == "enabled"
    assert gpu.mig_instances == ("3g.20gb (gi 1, ci 0)", "2g.10gb (gi 5, ci 0)", "1g.5gb (gi 13, ci 0)")
    assert "mig_utilization_ratio" in gpu.unsupported and "utilization_ratio" in gpu.unsupported
    assert "mig_memory_used_bytes" in gpu.supported


def test_permissions_and_lost_gpus_are_told_apart(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    fake_nvml.load_text("devices = 2\ngpu0.error = nvmlDeviceGetComputeRunningProcesses_v3 NoPermission\n"
                        "gpu1.error = nvmlDeviceGetUtilizationRates GpuIsLost\n", tmp_path)
    first, second = describe_gpus(NvmlDriver())
    assert first.readable and first.no_permission == ("process_memory_bytes",)
    assert not second.readable and "GPU is lost" in second.error


def test_the_table_shows_each_gpu_with_its_fields(fake_nvml: FakeNvml) -> None:
    fake_nvml.load("a100_mig")
    console = Console(file=io.StringIO(), width=250, record=True)
    render_gpus(console, describe_gpus(NvmlDriver()))
    text = console.export_text()
    for expected in ("NVIDIA A100-SXM4-40GB", "GPU-a100mig0-0000-4000-8000-000000000000", "00000000:07:00.0",
                     "enabled", "3g.20gb (gi 1, ci 0)", "mig_utilization_ratio", "42 of 59 supported",
                     "no: the GPU has no GPM (Hopper or newer only)"):
        assert expected in text
    assert "Supported on every GPU: encoder_utilization_ratio, decoder_utilization_ratio," in text


def test_simulated_gpus_can_be_described() -> None:
    (gpu,) = describe_gpus(SimulatedGpu())
    assert gpu.simulated and "Simulated" in gpu.model
    assert "fan_speed_ratio" in gpu.unsupported and "power_watts" in gpu.supported


def test_describing_without_a_driver_raises_nvml_unavailable(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    fake_nvml.load_text("init_error = DriverNotLoaded\n", tmp_path)
    with pytest.raises(NvmlUnavailable):
        describe_gpus(NvmlDriver())
