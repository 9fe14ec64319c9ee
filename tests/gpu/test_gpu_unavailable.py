"""Starting without NVML: one clear error (NvmlUnavailable), never a crash of the agent."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.collectors.gpu.collector import build_gpu_collector
from agent.config import GpuSettings
from agent.errors import FieldSpecError, NvmlUnavailable
from tests.gpu.gpu_helpers import FakeNvml

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
from agent.collectors.gpu.collector import build_gpu_collector
from agent.config import GpuSettings
from agent.errors import NvmlUnavailable
try:
    build_gpu_collector(GpuSettings(), "node-a")
except NvmlUnavailable as exc:
    print("UNAVAILABLE:", exc)
"""


@pytest.mark.skipif(ctypes.util.find_library("nvidia-ml") is not None,
                    reason="a real NVML library is installed on this machine")
def test_without_the_nvml_library_building_the_collector_says_so_clearly(tmp_path: Path) -> None:
    env = {**os.environ, "LD_LIBRARY_PATH": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("FAKENVML_SCENARIO", None)
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("UNAVAILABLE: gpu: NVML library libnvidia-ml.so.1 not found")
    assert "other collectors keep running" in done.stdout


def test_a_driver_that_is_not_loaded_gives_nvml_unavailable(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    fake_nvml.load_text("init_error = DriverNotLoaded\n", tmp_path)
    with pytest.raises(NvmlUnavailable, match="no loaded NVIDIA kernel driver"):
        build_gpu_collector(GpuSettings(), "node-a")


def test_nvml_without_gpus_gives_nvml_unavailable_and_releases_nvml(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    fake_nvml.load_text("devices = 0\n", tmp_path)
    with pytest.raises(NvmlUnavailable, match="sees no GPU"):
        build_gpu_collector(GpuSettings(), "node-a")
    assert fake_nvml.init_count == 0


def test_a_bad_fields_file_fails_before_nvml_is_touched(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    bad = tmp_path / "fields.csv"
    bad.write_text("power_watts, counter, watts, wrong kind\n")
    with pytest.raises(FieldSpecError, match=r"fields.csv:1: type"):
        build_gpu_collector(GpuSettings(fields_file=str(bad)), "node-a")
    assert fake_nvml.calls("nvmlInitWithFlags") == 0


def test_the_fake_reports_scenario_errors_with_their_line(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"scenario.scn:2: unknown NVML error 'GpuLost'"):
        fake_nvml.load_text("devices = 1\ngpu0.error = nvmlDeviceGetPowerUsage GpuLost\n", tmp_path)
