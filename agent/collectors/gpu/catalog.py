"""Exported GPU metric families."""

from __future__ import annotations

from agent.exporters.spec import MetricSpec

_GPU = ("host", "gpu", "uuid", "model")

GPU_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("campwatch_gpu_up", "gauge", "1 if the GPU could be read on the last cycle.", _GPU),
    MetricSpec("campwatch_gpu_utilization_ratio", "gauge",
               "Share of the last sample period the GPU was busy (0..1).", _GPU),
    MetricSpec("campwatch_gpu_memory_used_bytes", "gauge", "Framebuffer memory in use.", _GPU),
    MetricSpec("campwatch_gpu_memory_total_bytes", "gauge", "Framebuffer memory installed.", _GPU),
    MetricSpec("campwatch_gpu_power_watts", "gauge", "Power draw (the driver's average).", _GPU),
    MetricSpec("campwatch_gpu_energy_joules_total", "counter",
               "Energy consumed, from differences of the NVML energy counter.", _GPU),
)
