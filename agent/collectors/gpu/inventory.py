"""`campwatch gpus`: the GPUs a driver sees and which fields each of them supports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from agent.collectors.gpu.driver import DeviceInfo, GpuDriver, MigDevice, reason
from agent.collectors.gpu.sources import DEVICE_READINGS, KNOWN_FIELDS, MIG_SOURCES
from agent.errors import DriverError, GpuLost, NoData, NvmlUnavailable


@dataclass(frozen=True, slots=True)
class GpuInventory:
    """One GPU as `campwatch gpus` shows it. Field lists follow the order of the known fields."""

    index: int
    model: str
    uuid: str
    pci_bus_id: str
    readable: bool
    mig_mode: str
    """enabled, disabled or n/a"""
    mig_instances: tuple[str, ...]
    supported: tuple[str, ...]
    unsupported: tuple[str, ...]
    no_permission: tuple[str, ...]
    simulated: bool
    error: str = ""
    not_applicable: tuple[str, ...] = ()
    """MIG instance fields while MIG is disabled: whether they work shows once it is enabled."""
    gpm: str = ""
    """Profiling-grade activity (GPM): "yes", or "no: " and why."""


class _Probe:
    def __init__(self) -> None:
        self.status: dict[str, str] = {}

    def mark(self, fields: Iterable[str], status: str) -> None:
        for field in fields:
            self.status.setdefault(field, status)

    def outcome(self, fields: Sequence[str], exc: DriverError) -> None:
        if isinstance(exc, NoData):
            self.mark(fields, "supported")  # it exists, there was just nothing new to say
        elif isinstance(exc, GpuLost):
            raise exc
        else:
            self.mark(fields, reason(exc))

    def by(self, status: str) -> tuple[str, ...]:
        return tuple(f for f in KNOWN_FIELDS if self.status.get(f) == status)


def _probe_gpu(driver: GpuDriver, info: DeviceInfo) -> GpuInventory:
    probe = _Probe()
    index = info.index
    mig_mode = "n/a"
    instances: tuple[str, ...] = ()
    gpm = ""
    try:
        if info.lost:
            info = driver.refresh(index)
        for reading, fields in DEVICE_READINGS.items():
            try:
                read = driver.reader(index, reading)
                if reading == "gpm":  # binding it checked support and took the first sample
                    gpm = "yes"
                values = read()
            except DriverError as exc:
                probe.outcome(fields, exc)
                if reading == "gpm" and not gpm:
                    gpm = "no: " + exc.detail.removeprefix(f"GPU {index} gpm: ")
                continue
            for field, value in zip(fields, values, strict=False):
                probe.mark((field,), reason(None) if value is None else "supported")
                if field == "mig_enabled" and value is not None:
                    mig_mode = "enabled" if value else "disabled"
        try:
            driver.watch_xid(index)
            probe.mark(("xid_errors_total",), "supported")
        except DriverError as exc:
            probe.outcome(("xid_errors_total",), exc)
        try:
            driver.processes(index)
            probe.mark(("process_memory_bytes",), "supported")
        except DriverError as exc:
            probe.outcome(("process_memory_bytes",), exc)
        try:
            driver.process_utilization(index)
            probe.mark(("process_utilization_ratio",), "supported")
        except DriverError as exc:
            probe.outcome(("process_utilization_ratio",), exc)
        migs = _probe_mig(driver, index, probe)
        instances = tuple(f"{m.profile} (gi {m.gpu_instance}, ci {m.compute_instance})" for m in migs)
    except GpuLost as exc:
        return GpuInventory(index, info.model, info.uuid, info.pci_bus_id, False, mig_mode, (), (), (), (),
                            driver.simulated, str(exc))
    return GpuInventory(index, info.model, info.uuid, info.pci_bus_id, True, mig_mode, instances,
                        probe.by("supported"), probe.by("not supported"), probe.by("no permission"),
                        driver.simulated, not_applicable=probe.by("n/a"), gpm=gpm)


def _probe_mig(driver: GpuDriver, index: int, probe: _Probe) -> tuple[MigDevice, ...]:
    mig_fields = tuple(MIG_SOURCES)
    try:
        devices = driver.mig_devices(index)
    except DriverError as exc:
        probe.outcome(mig_fields, exc)
        return ()
    if not devices:
        # MIG exists here but is off: instance fields can only be tried once it is enabled
        probe.mark(mig_fields, "n/a" if probe.status.get("mig_enabled") == "supported" else "not supported")
        return ()
    for field, (reading, position) in MIG_SOURCES.items():
        try:
            values = driver.mig_reader(index, devices[0].slot, reading)()
        except DriverError as exc:
            probe.outcome((field,), exc)
            continue
        probe.mark((field,), reason(None) if values[position] is None else "supported")
    return devices


def describe_gpus(driver: GpuDriver) -> list[GpuInventory]:
    """Open the driver, probe every known field on every GPU once, close it.

    Raises NvmlUnavailable (from `open`) when NVML or the driver is missing. Blocking."""
    driver.open()
    try:
        try:
            devices = driver.devices()
        except DriverError as exc:
            raise NvmlUnavailable(f"NVML could not list the GPUs: {exc}") from None
        return [_probe_gpu(driver, info) for info in devices]
    finally:
        driver.close()


def render_gpus(console: Console, inventory: Sequence[GpuInventory]) -> None:
    """Print the inventory: a table with one row per GPU (index, model, uuid, PCI bus, MIG mode and
    instances, unsupported fields), then the supported fields, once per group of GPUs that share them."""
    if not inventory:
        console.print("No GPU found.")
        return
    table = Table(title="GPUs", show_lines=True)
    for column in ("GPU", "model", "uuid", "PCI bus", "MIG", "GPM", "fields", "unsupported fields"):
        table.add_column(column, overflow="fold")
    for gpu in inventory:
        model = gpu.model + (" (simulated)" if gpu.simulated and "Simulated" not in gpu.model else "")
        if not gpu.readable:
            table.add_row(str(gpu.index), model, gpu.uuid, gpu.pci_bus_id, gpu.mig_mode, "-", "-",
                          f"[red]unreadable: {gpu.error}[/red]")
            continue
        unsupported = ", ".join(gpu.unsupported)
        if gpu.no_permission:
            unsupported += ("\n" if unsupported else "") + "no permission: " + ", ".join(gpu.no_permission)
        table.add_row(str(gpu.index), model, gpu.uuid, gpu.pci_bus_id,
                      gpu.mig_mode + "".join(f"\n{i}" for i in gpu.mig_instances), gpu.gpm or "-",
                      f"{len(gpu.supported)} of {len(KNOWN_FIELDS) - len(gpu.not_applicable)} supported",
                      unsupported or "-")
    console.print(table)
    groups: dict[tuple[str, ...], list[int]] = {}
    for gpu in inventory:
        if gpu.readable:
            groups.setdefault(gpu.supported, []).append(gpu.index)
    for supported, indexes in groups.items():
        who = "every GPU" if len(indexes) == len(inventory) else "GPU " + ", ".join(map(str, indexes))
        console.print(f"[bold]Supported on {who}:[/bold] " + ", ".join(supported))
