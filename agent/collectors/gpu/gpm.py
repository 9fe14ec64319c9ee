"""GPU Performance Monitoring (GPM, Hopper and newer) through pynvml: the "gpm" device reading.

GPM metrics describe the interval between two samples. A GpmSampler keeps the previous sample of
its GPU, so each cycle takes one new sample and reads the metrics since the last cycle: no sleep,
no second sample per cycle. The two sample buffers and the metrics request are allocated once and
reused. Values come back in DEVICE_READINGS["gpm"] order, in base units, None for a metric this
GPU does not report. Whole GPUs only: per-MIG-instance GPM (nvmlGpmMigSampleGet) is not read."""

from __future__ import annotations

import contextlib
from typing import Any

import pynvml

from agent.collectors.gpu.sources import DEVICE_READINGS
from agent.errors import NoData, NotSupported

_MIB = 1024.0 * 1024.0
_PERCENT = 0.01

GPM_METRICS: dict[str, tuple[int, float]] = {
    "sm_active_ratio": (pynvml.NVML_GPM_METRIC_SM_UTIL, _PERCENT),
    "sm_occupancy_ratio": (pynvml.NVML_GPM_METRIC_SM_OCCUPANCY, _PERCENT),
    "tensor_active_ratio": (pynvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL, _PERCENT),
    "dram_bandwidth_ratio": (pynvml.NVML_GPM_METRIC_DRAM_BW_UTIL, _PERCENT),
    "pcie_tx_average_bytes_per_second": (pynvml.NVML_GPM_METRIC_PCIE_TX_PER_SEC, _MIB),
    "pcie_rx_average_bytes_per_second": (pynvml.NVML_GPM_METRIC_PCIE_RX_PER_SEC, _MIB),
    "nvlink_tx_bytes_per_second": (pynvml.NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC, _MIB),
    "nvlink_rx_bytes_per_second": (pynvml.NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC, _MIB),
}
"""Field -> (NVML GPM metric id, factor to base units: NVML reports percent and MiB/s)."""

_ORDER = tuple(GPM_METRICS[field] for field in DEVICE_READINGS["gpm"])
_SUCCESS = pynvml.NVML_SUCCESS


class GpmSampler:
    """The "gpm" reading of one GPU. `prime` raises NotSupported where the GPU has no GPM (before
    Hopper, or a driver before R520: the call is missing) and pynvml.NVMLError otherwise; calling
    before a successful prime primes and raises NoData (nothing to report until the next cycle).
    Not thread-safe, like every driver call. Call `free` when done."""

    def __init__(self, handle: Any, what: str) -> None:
        self._handle = handle
        self._what = what
        self._previous: Any = None
        self._next: Any = None
        request = pynvml.c_nvmlGpmMetricsGet_t()
        request.version = pynvml.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = len(_ORDER)
        for slot, (metric_id, _) in enumerate(_ORDER):
            request.metrics[slot].metricId = metric_id
        self._request = request
        self._metrics = request.metrics
        self._scales = tuple(scale for _, scale in _ORDER)

    def prime(self) -> None:
        support = pynvml.nvmlGpmQueryDeviceSupport(self._handle)
        if not support.isSupportedDevice:
            raise NotSupported(f"{self._what}: the GPU has no GPM (Hopper or newer only)")
        if self._previous is None:
            self._previous = pynvml.nvmlGpmSampleAlloc()
        if self._next is None:
            self._next = pynvml.nvmlGpmSampleAlloc()
        pynvml.nvmlGpmSampleGet(self._handle, self._previous)
        self._request.sample1 = self._previous
        self._request.sample2 = self._next

    def __call__(self) -> tuple[float | None, ...]:
        request = self._request
        if not request.sample1:
            self.prime()
            raise NoData(f"{self._what}: first sample taken, metrics from the next cycle")
        pynvml.nvmlGpmSampleGet(self._handle, request.sample2)
        pynvml.nvmlGpmMetricsGet(request)
        request.sample1, request.sample2 = request.sample2, request.sample1  # the newest is the next base
        metrics = self._metrics
        return tuple(
            metrics[slot].value * scale if metrics[slot].nvmlReturn == _SUCCESS else None
            for slot, scale in enumerate(self._scales)
        )

    def free(self) -> None:
        """Release the sample buffers (errors ignored: NVML may already be shut down)."""
        for sample in (self._previous, self._next):
            if sample is not None:
                with contextlib.suppress(pynvml.NVMLError):
                    pynvml.nvmlGpmSampleFree(sample)
        self._previous = self._next = None
        self._request.sample1 = self._request.sample2 = None
