"""The driver interface under the GPU collector: NVML (nvml.py) and the simulated GPU
(agent/sim/gpu.py) both implement it, so the collector cannot tell them apart.

Calls are blocking and not thread-safe; the collector makes them from one worker thread at a time.
Failures are reported with the DriverError subclasses (agent.errors), which tell the collector what
to do: skip the field for good (NotSupported, NoPermission), skip it this time (NoData), or mark the
GPU down and retry it later (GpuLost)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from agent.errors import DriverError, NoPermission

Reading: TypeAlias = Callable[[], tuple[float | None, ...]]
"""One bound device query: returns the values of its fields (sources.DEVICE_READINGS) in base units,
None for a value the device lacks."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A GPU as discovered. `lost` marks one that could not be read at discovery (uuid/model empty)."""

    index: int
    uuid: str
    model: str
    pci_bus_id: str
    lost: bool = False


@dataclass(frozen=True, slots=True)
class MigDevice:
    """One MIG instance of a GPU; `slot` addresses it in `mig_reader`."""

    slot: int
    uuid: str
    profile: str
    gpu_instance: int
    compute_instance: int


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    """A process holding GPU memory. `memory_bytes` is None where the driver cannot tell."""

    pid: int
    memory_bytes: float | None


class GpuDriver(Protocol):
    simulated: bool

    def open(self) -> None:
        """Start the library; raises agent.errors.NvmlUnavailable when it or the driver is missing.
        Calls pair with `close` and may nest."""

    def close(self) -> None: ...

    def devices(self) -> tuple[DeviceInfo, ...]:
        """Discover the GPUs (once, at start)."""

    def refresh(self, index: int) -> DeviceInfo:
        """Re-acquire a GPU after it was lost; raises GpuLost while it is still unreadable."""

    def reader(self, index: int, reading: str) -> Reading:
        """A bound query for one of sources.DEVICE_READINGS; raises NotSupported for an unknown one, and
        NotSupported or NoPermission when binding it finds the GPU cannot serve it (GPM)."""

    def processes(self, index: int) -> tuple[ProcessUsage, ...]:
        """Compute processes on the GPU (a pid may appear once per MIG instance it uses)."""

    def process_utilization(self, index: int) -> Mapping[int, float]:
        """SM utilization (0..1) per pid over the samples since the previous call."""

    def process_name(self, pid: int) -> str | None:
        """The driver's name for a pid, used when /proc does not show it."""

    def mig_devices(self, index: int) -> tuple[MigDevice, ...]:
        """The GPU's MIG instances; empty when MIG is disabled, NotSupported where MIG does not exist."""

    def mig_reader(self, index: int, slot: int, reading: str) -> Reading:
        """A bound query ("memory" or "utilization") on one MIG instance from `mig_devices`."""

    def watch_xid(self, index: int) -> None:
        """Subscribe to the GPU's XID error events; NotSupported where it has none."""

    def poll_xid(self) -> tuple[tuple[int, int], ...]:
        """(gpu index, XID code) for each event since the last poll. Never blocks."""


def reason(exc: DriverError | None) -> str:
    """Why a field is skipped after `exc`, as `campwatch gpus` and `GpuCollector.unsupported_fields`
    show it: "no permission" for NoPermission; "not supported" for NotSupported, any other driver
    error that rules the field out, and None (the device returned no value)."""
    return "no permission" if isinstance(exc, NoPermission) else "not supported"
