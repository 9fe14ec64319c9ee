"""The GPU collector: one cycle reads every GPU through a GpuDriver (NVML or simulated) and returns a
GpuSample row per GPU plus the points to expose.

Discovery happens once, at construction. Each GPU keeps a plan: the driver readings its enabled fields
need, bound to its handle, with label tuples built in advance, so a cycle only calls and copies
values. A field the GPU lacks leaves the plan the first time it fails (recorded, never exported as 0);
a GPU that cannot be read goes `campwatch_gpu_up 0` and is retried with exponential backoff while the
others carry on."""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path

from agent.collectors.gpu.catalog import UP_METRIC
from agent.collectors.gpu.driver import DeviceInfo, GpuDriver, MigDevice, Reading, reason
from agent.collectors.gpu.energy import EnergyCounter
from agent.collectors.gpu.fields import FieldSpec, load_fields
from agent.collectors.gpu.procfs import read_identity
from agent.collectors.gpu.scope import requested_devices, select
from agent.collectors.gpu.sources import (
    MIG_SOURCES,
    PREFIX,
    SPECIAL_READINGS,
    THROTTLE_METRIC,
    VIOLATION_METRIC,
    VIOLATION_REASONS,
)
from agent.collectors.gpu.throttle import THROTTLE_REASONS
from agent.config import GpuSettings
from agent.errors import ConfigError, DriverError, GpuLost, NoData, NoPermission, NotSupported, NvmlUnavailable
from agent.samples import Collected, GpuSample, Labels, Point, labels

log = logging.getLogger(__name__)

ENERGY_FIELD = "energy_joules_total"
THROTTLE_FIELD = "throttle_reasons_bitmask"
XID_FIELD = "xid_errors_total"
PROC_MEMORY_FIELD = "process_memory_bytes"
PROC_UTIL_FIELD = "process_utilization_ratio"
MIG_MODE_FIELD = "mig_enabled"
_MIG_FIELDS = tuple(MIG_SOURCES)

MAX_RETRY_S = 60.0
MIG_REFRESH_S = 60.0

Output = tuple[int, str, str | None]
"""(position in the reading's values, field, metric to emit directly or None when post-processed)"""


@dataclass(slots=True)
class _Step:
    reading: str
    read: Reading
    outputs: tuple[Output, ...]


@dataclass(slots=True)
class _MigInstance:
    device: MigDevice
    labels: Labels
    steps: tuple[_Step, ...]


class _Gpu:
    """Everything the collector keeps about one GPU between cycles."""

    __slots__ = (
        "down_point", "energy", "failures", "index", "info", "labels", "mig", "mig_mode", "mig_refresh_at",
        "plan", "proc_labels", "retry_at", "throttle_labels", "unsupported", "up", "up_point", "violation_labels",
        "xid_counts", "xid_labels", "xid_watched",
    )

    def __init__(self, info: DeviceInfo, host: str) -> None:
        self.index = info.index
        self.unsupported: dict[str, str] = {}
        self.energy = EnergyCounter()
        self.plan: tuple[_Step, ...] = ()
        self.up = not info.lost
        self.failures = 0
        self.retry_at = float("-inf")
        self.xid_watched = False
        self.xid_counts: dict[int, int] = {}
        self.mig: tuple[_MigInstance, ...] | None = None
        self.mig_mode: float | None = None
        self.mig_refresh_at = float("-inf")
        self.set_info(info, host)

    def set_info(self, info: DeviceInfo, host: str) -> None:
        self.info = info
        self.labels = labels(host=host, gpu=info.index, uuid=info.uuid, model=info.model,
                             pci_bus_id=info.pci_bus_id)
        self.up_point = Point(UP_METRIC, 1.0, self.labels)
        self.down_point = Point(UP_METRIC, 0.0, self.labels)
        self.throttle_labels = tuple((bit, self.extend(reason=name)) for bit, name in THROTTLE_REASONS)
        self.violation_labels = tuple((field, self.extend(reason=name)) for field, name in VIOLATION_REASONS.items())
        self.xid_labels: dict[int, Labels] = {}
        self.proc_labels: dict[int, Labels] = {}

    def extend(self, **more: object) -> Labels:
        return tuple(sorted(self.labels + labels(**more)))


class GpuCollector:
    """Collector (agent.collectors.base) for the GPUs a driver sees. Build it with build_gpu_collector."""

    name = "gpu"

    def __init__(
        self,
        driver: GpuDriver,
        devices: Sequence[DeviceInfo],
        fields: Sequence[FieldSpec],
        *,
        host: str,
        interval_s: float = 1.0,
        top_processes: int = 10,
        proc_root: Path = Path("/proc"),
        clock: Callable[[], float] = time.monotonic,
        mig_scope: Mapping[int, frozenset[str]] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self._mig_scope = dict(mig_scope or {})
        """GPU index -> the only MIG instance UUIDs read on it (scope.py); other GPUs: every instance."""
        self._driver = driver
        self._host = host
        self._top = top_processes
        self._proc_root = proc_root
        self._clock = clock
        self._lock = threading.Lock()
        self._simulated = bool(driver.simulated)
        enabled = {spec.name: spec for spec in fields}
        self._readings: dict[str, tuple[Output, ...]] = {}
        for spec in fields:
            known = spec.source
            if known.reading in SPECIAL_READINGS:
                continue
            direct = None if known.exposition in ("energy", "throttle", "violation") else known.metric
            self._readings[known.reading] = (*self._readings.get(known.reading, ()),
                                             (known.position, known.name, direct))
        self._xid = XID_FIELD in enabled
        self._proc_memory = PROC_MEMORY_FIELD in enabled and top_processes > 0
        self._proc_util = PROC_UTIL_FIELD in enabled and top_processes > 0
        self._mig_fields = tuple(f for f in _MIG_FIELDS if f in enabled)
        self._gpus = tuple(_Gpu(info, host) for info in devices)
        self._by_index = {gpu.index: gpu for gpu in self._gpus}
        for gpu in self._gpus:
            if gpu.up:
                self._prepare(gpu)

    # ---- public ----

    @property
    def devices(self) -> tuple[DeviceInfo, ...]:
        return tuple(gpu.info for gpu in self._gpus)

    def unsupported_fields(self, index: int) -> Mapping[str, str]:
        """Fields skipped on a GPU so far, with why ("not supported" or "no permission")."""
        return dict(self._by_index[index].unsupported)

    async def collect(self) -> Collected:
        return await asyncio.to_thread(self.collect_sync)

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    def collect_sync(self) -> Collected:
        """One collection cycle, blocking (the benchmark and tests call it directly)."""
        with self._lock:
            return self._cycle()

    # ---- the cycle ----

    def _cycle(self) -> Collected:
        now = datetime.now(UTC)
        t = self._clock()
        if self._xid:
            for index, code in self._driver.poll_xid():
                gpu = self._by_index.get(index)
                if gpu is not None:
                    gpu.xid_counts[code] = gpu.xid_counts.get(code, 0) + 1
        rows: list[GpuSample] = []
        points: list[Point] = []
        host = self._host
        simulated = self._simulated
        for gpu in self._gpus:
            values: dict[str, float] | None = None
            if gpu.up or self._recover(gpu, t):
                gpu_points = [gpu.up_point]
                values = self._read(gpu, gpu_points, t)
                if values is not None:
                    points.extend(gpu_points)
            info = gpu.info
            if values is None:
                points.append(gpu.down_point)
                rows.append(GpuSample(now, host, info.index, info.uuid, info.model, False, {},
                                      info.pci_bus_id, simulated))
            else:
                rows.append(GpuSample(now, host, info.index, info.uuid, info.model, True, values,
                                      info.pci_bus_id, simulated))
            if gpu.xid_counts:
                points.extend(self._xid_points(gpu))
        return Collected("gpu", tuple(rows), tuple(points))

    def _read(self, gpu: _Gpu, points: list[Point], t: float) -> dict[str, float] | None:
        """Read one GPU into `points`; None when it was lost on the way."""
        labels_ = gpu.labels
        values: dict[str, float] = {}
        for step in gpu.plan:
            try:
                out = step.read()
            except (NotSupported, NoPermission) as exc:
                self._skip(gpu, (o[1] for o in step.outputs), reason(exc), exc)
                continue
            except NoData:
                continue
            except GpuLost as exc:
                self._lose(gpu, exc, t)
                return None
            for position, field, metric in step.outputs:
                value = out[position]
                if value is None:
                    self._skip(gpu, (field,), reason(None), None)
                    continue
                values[field] = value
                if metric is not None:
                    points.append(Point(metric, value, labels_))
        raw = values.get(ENERGY_FIELD)
        if raw is not None:
            total = gpu.energy.update(raw, t)
            values[ENERGY_FIELD] = total
            points.append(Point(PREFIX + ENERGY_FIELD, total, labels_))
        mask = values.get(THROTTLE_FIELD)
        if mask is not None:
            bits = int(mask)
            points.extend(Point(THROTTLE_METRIC, 1.0 if bits & bit else 0.0, reason_labels)
                          for bit, reason_labels in gpu.throttle_labels)
        for field, reason_labels in gpu.violation_labels:
            seconds = values.get(field)
            if seconds is not None:
                points.append(Point(VIOLATION_METRIC, seconds, reason_labels))
        if gpu.xid_watched:
            values[XID_FIELD] = float(sum(gpu.xid_counts.values()))
        try:
            if (self._proc_memory or self._proc_util) and PROC_MEMORY_FIELD not in gpu.unsupported:
                self._read_processes(gpu, points)
            if self._mig_fields:
                self._read_mig(gpu, values.get(MIG_MODE_FIELD), points, t)
        except GpuLost as exc:
            self._lose(gpu, exc, t)
            return None
        gpu.failures = 0
        return values

    def _xid_points(self, gpu: _Gpu) -> list[Point]:
        out: list[Point] = []
        for code, count in gpu.xid_counts.items():
            code_labels = gpu.xid_labels.get(code)
            if code_labels is None:
                code_labels = gpu.xid_labels[code] = gpu.extend(xid=code)
            out.append(Point(PREFIX + XID_FIELD, float(count), code_labels))
        return out

    # ---- processes ----

    def _read_processes(self, gpu: _Gpu, points: list[Point]) -> None:
        driver = self._driver
        try:
            procs = driver.processes(gpu.index)
        except (NotSupported, NoPermission) as exc:
            self._skip(gpu, (PROC_MEMORY_FIELD, PROC_UTIL_FIELD), reason(exc), exc)
            return
        except NoData:
            return
        memory: dict[int, float] = {}
        for proc in procs:
            if proc.memory_bytes is not None:  # unknown only under Windows WDDM
                memory[proc.pid] = memory.get(proc.pid, 0.0) + proc.memory_bytes
        top = heapq.nlargest(self._top, memory.items(), key=itemgetter(1)) if len(memory) > self._top \
            else list(memory.items())
        util: Mapping[int, float] = {}
        if self._proc_util and top and PROC_UTIL_FIELD not in gpu.unsupported:
            try:
                util = driver.process_utilization(gpu.index)
            except (NotSupported, NoPermission) as exc:
                self._skip(gpu, (PROC_UTIL_FIELD,), reason(exc), exc)
            except NoData:
                pass
        cache = gpu.proc_labels
        if len(cache) > len(top):  # forget processes that left (their pid may be reused)
            keep = {pid for pid, _ in top}
            for pid in [pid for pid in cache if pid not in keep]:
                del cache[pid]
        for pid, used in top:
            proc_labels = cache.get(pid)
            if proc_labels is None:
                proc_labels = cache[pid] = self._process_labels(gpu, pid)
            if self._proc_memory:
                points.append(Point(PREFIX + PROC_MEMORY_FIELD, used, proc_labels))
            busy = util.get(pid)
            if busy is not None:
                points.append(Point(PREFIX + PROC_UTIL_FIELD, busy, proc_labels))

    def _process_labels(self, gpu: _Gpu, pid: int) -> Labels:
        identity = read_identity(self._proc_root, pid)
        if identity is not None:
            name, container = identity.name, identity.container
        else:
            name, container = self._driver.process_name(pid) or "", ""
        return gpu.extend(pid=pid, process=name, container=container)

    # ---- MIG ----

    def _read_mig(self, gpu: _Gpu, mode: float | None, points: list[Point], t: float) -> None:
        if gpu.mig is None or t >= gpu.mig_refresh_at or (mode is not None and mode != gpu.mig_mode):
            self._discover_mig(gpu, t)
            gpu.mig_mode = mode
        for instance in gpu.mig or ():
            for step in instance.steps:
                try:
                    out = step.read()
                except (NotSupported, NoPermission) as exc:
                    self._skip(gpu, (o[1] for o in step.outputs), reason(exc), exc)
                    instance.steps = tuple(s for s in instance.steps if s is not step)
                    continue
                except NoData:
                    continue
                except GpuLost as exc:
                    log.info("GPU %d MIG instance %s: %s; listing the instances again next cycle",
                             gpu.index, instance.device.uuid, exc.detail)
                    gpu.mig_refresh_at = float("-inf")
                    break
                for position, _field, metric in step.outputs:
                    value = out[position]
                    if value is not None and metric is not None:
                        points.append(Point(metric, value, instance.labels))

    def _discover_mig(self, gpu: _Gpu, t: float) -> None:
        gpu.mig = ()
        gpu.mig_refresh_at = t + MIG_REFRESH_S
        wanted = [f for f in self._mig_fields if f not in gpu.unsupported]
        if not wanted:
            gpu.mig_refresh_at = float("inf")
            return
        try:
            devices = self._driver.mig_devices(gpu.index)
        except (NotSupported, NoPermission) as exc:
            self._skip(gpu, self._mig_fields, reason(exc), exc)
            gpu.mig_refresh_at = float("inf")
            return
        except NoData:
            return
        only = self._mig_scope.get(gpu.index)
        if only is not None:
            devices = tuple(d for d in devices if d.uuid in only)
        by_reading: dict[str, list[Output]] = {}
        for field in wanted:
            reading, position = MIG_SOURCES[field]
            by_reading.setdefault(reading, []).append((position, field, PREFIX + field))
        instances: list[_MigInstance] = []
        for device in devices:
            steps: list[_Step] = []
            for reading, outputs in by_reading.items():
                try:
                    steps.append(_Step(reading, self._driver.mig_reader(gpu.index, device.slot, reading),
                                       tuple(outputs)))
                except (NotSupported, NoPermission) as exc:
                    self._skip(gpu, (o[1] for o in outputs), reason(exc), exc)
            instances.append(_MigInstance(
                device,
                gpu.extend(gpu_instance=device.gpu_instance, compute_instance=device.compute_instance,
                           mig_uuid=device.uuid, mig_profile=device.profile),
                tuple(steps),
            ))
        gpu.mig = tuple(instances)

    # ---- plans, skipping, losing, recovering ----

    def _prepare(self, gpu: _Gpu) -> None:
        """Bind the GPU's readings and subscribe to its XID events."""
        steps: list[_Step] = []
        for reading, outputs in self._readings.items():
            kept = tuple(o for o in outputs if o[1] not in gpu.unsupported)
            if not kept:
                continue
            try:
                steps.append(_Step(reading, self._driver.reader(gpu.index, reading), kept))
            except (NotSupported, NoPermission) as exc:
                self._skip(gpu, (o[1] for o in kept), reason(exc), exc)
        gpu.plan = tuple(steps)
        gpu.mig = None
        if self._xid and not gpu.xid_watched and XID_FIELD not in gpu.unsupported:
            try:
                self._driver.watch_xid(gpu.index)
                gpu.xid_watched = True
            except (NotSupported, NoPermission) as exc:
                self._skip(gpu, (XID_FIELD,), reason(exc), exc)
            except DriverError as exc:
                log.warning("GPU %d: XID events not available yet: %s", gpu.index, exc.detail)

    def _skip(self, gpu: _Gpu, fields: Iterable[str], why: str, exc: DriverError | None) -> None:
        """Drop `fields` from the GPU's plan for good; `why` is reason(exc)."""
        new = [f for f in fields if f not in gpu.unsupported]
        if not new:
            return
        for field in new:
            gpu.unsupported[field] = why
        detail = f" ({exc.detail})" if exc is not None else ""
        if why == "no permission":
            log.warning("GPU %d (%s): reading %s needs privileges the agent lacks%s; skipping",
                        gpu.index, gpu.info.uuid, ", ".join(new), detail)
        else:
            log.info("GPU %d (%s): %s not supported%s; skipping", gpu.index, gpu.info.uuid, ", ".join(new),
                     detail)
        dropped = set(new)
        plan: list[_Step] = []
        for step in gpu.plan:
            outputs = tuple(o for o in step.outputs if o[1] not in dropped)
            if outputs:
                step.outputs = outputs
                plan.append(step)
        gpu.plan = tuple(plan)

    def _retry_delay(self, failures: int) -> float:
        base = max(self.interval_s, 1.0)
        return min(base * 2.0 ** (failures - 1), max(MAX_RETRY_S, base))

    def _lose(self, gpu: _Gpu, exc: DriverError, t: float) -> None:
        gpu.up = False
        gpu.failures += 1
        delay = self._retry_delay(gpu.failures)
        gpu.retry_at = t + delay
        if gpu.failures == 1:
            log.warning("GPU %d (%s) cannot be read: %s; marked down, retrying in %.0f s",
                        gpu.index, gpu.info.uuid, exc.detail, delay)
        else:
            log.debug("GPU %d still unreadable (%s); next try in %.0f s", gpu.index, exc.detail, delay)

    def _recover(self, gpu: _Gpu, t: float) -> bool:
        if t < gpu.retry_at:
            return False
        try:
            info = self._driver.refresh(gpu.index)
        except DriverError as exc:
            self._lose(gpu, exc, t)
            return False
        if info.uuid != gpu.info.uuid:  # another board in the slot, or first sight of a lost-at-start GPU
            gpu.unsupported.clear()
            gpu.energy = EnergyCounter()
            gpu.xid_watched = False
        gpu.set_info(info, self._host)
        gpu.up = True
        self._prepare(gpu)
        log.info("GPU %d (%s) readable again", gpu.index, info.uuid)
        return True

    def _close(self) -> None:
        with self._lock:
            self._driver.close()


def build_gpu_collector(
    settings: GpuSettings,
    host: str,
    driver: GpuDriver | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    environ: Mapping[str, str] | None = None,
) -> GpuCollector:
    """Validate the fields file, open the driver (NVML when `driver` is None), discover the GPUs and
    keep the ones in scope (gpu.devices, else NVIDIA_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES from
    `environ`, default os.environ; see scope.py).

    Raises FieldSpecError for a bad fields file, ConfigError for a device entry that matches no GPU,
    and NvmlUnavailable when NVML, the driver or any GPU in scope is missing (the runner logs that
    once and runs the other collectors). Blocking: call it at start."""
    fields = load_fields(settings.fields_file or None)
    if driver is None:
        from agent.collectors.gpu.nvml import NvmlDriver

        driver = NvmlDriver()
    driver.open()
    try:
        devices = driver.devices()
    except DriverError as exc:
        driver.close()
        raise NvmlUnavailable(f"NVML could not list the GPUs: {exc}") from None
    if not devices:
        driver.close()
        raise NvmlUnavailable("NVML works but sees no GPU (in a container, check --gpus / "
                              "NVIDIA_VISIBLE_DEVICES). GPU collection is off.")
    if environ is None:  # a simulated GPU is none of the devices the container runtime names
        environ = {} if driver.simulated else os.environ
    request = requested_devices(settings.devices, environ)
    try:
        scope = select(request, devices, driver.mig_devices)
    except ConfigError:
        driver.close()
        raise
    if not scope.devices:
        driver.close()
        raise NvmlUnavailable(f"no GPU is in scope: {request.describe()}. GPU collection is off.")
    shown = ", ".join(f"{d.index} {d.uuid or '(unreadable)'} {d.model}".rstrip() for d in scope.devices)
    mig = "".join(f"; GPU {i} MIG instances {', '.join(sorted(u))}" for i, u in sorted(scope.mig.items()))
    log.info("GPUs read: %s (of %d NVML shows; scope: %s)%s", shown, len(devices), request.describe(), mig)
    return GpuCollector(driver, scope.devices, fields, host=host, interval_s=settings.interval_s,
                        top_processes=settings.top_processes, proc_root=Path(settings.proc_root), clock=clock,
                        mig_scope=scope.mig)
