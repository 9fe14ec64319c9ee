"""The fake NVML library itself: it covers every C function the NVML driver reaches through pynvml."""

from __future__ import annotations

import ctypes
import inspect
import re
from pathlib import Path

import pynvml
import pytest

import agent.collectors.gpu.nvml as nvml_driver
from agent.collectors.gpu.collector import build_gpu_collector
from agent.config import GpuSettings
from agent.errors import NvmlUnavailable
from tests.gpu.gpu_helpers import FakeNvml

_C_NAME = re.compile(r'_nvmlGetFunctionPointer\("(\w+)"\)')
_PY_CALL = re.compile(r"\b(nvml[A-Z]\w*)\(")


def _c_functions(python_name: str, seen: set[str]) -> set[str]:
    """C symbols a pynvml wrapper resolves, following wrappers that call other wrappers."""
    if python_name in seen or not callable(getattr(pynvml, python_name, None)):
        return set()
    seen.add(python_name)
    source = inspect.getsource(getattr(pynvml, python_name))
    found = set(_C_NAME.findall(source))
    for callee in _PY_CALL.findall(source):
        if callee != python_name:
            found |= _c_functions(callee, seen)
    return found


def test_the_fake_exports_every_nvml_function_the_driver_uses(fake_nvml: FakeNvml) -> None:
    sources = (Path(nvml_driver.__file__), Path(nvml_driver.__file__).with_name("gpm.py"))
    used = {name for path in sources for name in re.findall(r"pynvml\.(nvml[A-Z]\w*)\(", path.read_text())}
    assert "nvmlDeviceGetFieldValues" in used
    symbols: set[str] = set()
    for name in used | {"nvmlInit"}:
        symbols |= _c_functions(name, set())
    library = ctypes.CDLL(str(fake_nvml.path))
    missing = sorted(s for s in symbols if not hasattr(library, s))
    assert missing == []
    assert {"nvmlDeviceGetMemoryInfo_v2", "nvmlEventSetWait_v2", "nvmlDeviceGetComputeRunningProcesses_v3",
            "nvmlDeviceGetProcessesUtilizationInfo", "nvmlDeviceGetMigDeviceHandleByIndex",
            "nvmlGpmQueryDeviceSupport", "nvmlGpmSampleGet", "nvmlGpmMetricsGet",
            "nvmlDeviceGetViolationStatus"} <= symbols


def test_a_disarmed_fake_plays_a_host_without_nvidia_driver(fake_nvml: FakeNvml) -> None:
    fake_nvml.disarm()
    with pytest.raises(NvmlUnavailable, match=r"libnvidia-ml\.so\.1 not found"):
        build_gpu_collector(GpuSettings(), "node-a")


def test_the_fake_answers_the_calls_nvitop_makes_with_the_scenario_values(fake_nvml: FakeNvml) -> None:
    """benchmarks/bench_peers runs nvitop-exporter against the fake: the calls it needs beyond campwatch's."""
    fake_nvml.load("h100_8gpu")
    pynvml.nvmlInit()
    try:
        gpu0 = pynvml.nvmlDeviceGetHandleByIndex(0)
        assert pynvml.nvmlSystemGetCudaDriverVersion() == 12080
        assert pynvml.nvmlDeviceGetPowerManagementLimit(gpu0) == 700000
        assert pynvml.nvmlDeviceGetTemperatureV(gpu0, pynvml.NVML_TEMPERATURE_GPU) == 31
        fake_nvml.step(2)
        assert pynvml.nvmlDeviceGetTemperatureV(gpu0, pynvml.NVML_TEMPERATURE_GPU) == 58
        assert pynvml.nvmlDeviceGetGraphicsRunningProcesses_v3(gpu0) == []
        samples = pynvml.nvmlDeviceGetProcessUtilization(gpu0, 0)
        assert [(s.pid, s.smUtil, s.timeStamp) for s in samples] == [(4101, 35, 3_000_000)]
        with pytest.raises(pynvml.NVMLError_NotFound):  # nothing newer than the sample already seen
            pynvml.nvmlDeviceGetProcessUtilization(gpu0, 3_000_000)
    finally:
        pynvml.nvmlShutdown()
