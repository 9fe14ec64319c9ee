"""The NVML driver: GpuDriver over pynvml (nvidia-ml-py). No DCGM, no nvidia-smi, no root needed.

Values are converted to base units here (NVML reports percent, milliwatts, millijoules, MHz, KB/s),
so the collector and the simulated GPU share one vocabulary."""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable, Mapping
from typing import Any

import pynvml

from agent.collectors.gpu.driver import DeviceInfo, MigDevice, ProcessUsage, Reading
from agent.collectors.gpu.gpm import GpmSampler
from agent.errors import DriverError, GpuLost, NoData, NoPermission, NotSupported, NvmlUnavailable

log = logging.getLogger(__name__)

Handle = Any  # pynvml.c_nvmlDevice_t, an opaque pointer
Values = tuple[float | None, ...]

_UNSUPPORTED_CODES = frozenset({
    pynvml.NVML_ERROR_NOT_SUPPORTED,
    pynvml.NVML_ERROR_FUNCTION_NOT_FOUND,  # the installed driver predates the call
    pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH,
    pynvml.NVML_ERROR_INVALID_ARGUMENT,  # e.g. an instance-only query on a full GPU
})
_NO_DATA_CODES = frozenset({
    pynvml.NVML_ERROR_NO_DATA, pynvml.NVML_ERROR_NOT_READY, pynvml.NVML_ERROR_TIMEOUT,
    pynvml.NVML_ERROR_NOT_FOUND,
})
_PCIE_KB = 1024.0  # NVML reports PCIe throughput in KB/s
_FIELD_IDS = ((pynvml.NVML_FI_DEV_POWER_INSTANT, 0), (pynvml.NVML_FI_DEV_MEMORY_TEMP, 0))
_ALL_LINKS = 0xFFFFFFFF  # scopeId UINT_MAX: NVLink throughput summed over every link
_NVLINK_IDS = (
    (pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, _ALL_LINKS),
    (pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, _ALL_LINKS),
    (pynvml.NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL, 0),
    (pynvml.NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL, 0),
    (pynvml.NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL, 0),
    (pynvml.NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL, 0),
)
_NVLINK_SCALES = (1024.0, 1024.0, 1.0, 1.0, 1.0, 1.0)  # throughput counters are in KiB
_POLICIES = (  # sources.VIOLATION_REASONS' order
    pynvml.NVML_PERF_POLICY_POWER, pynvml.NVML_PERF_POLICY_THERMAL, pynvml.NVML_PERF_POLICY_SYNC_BOOST,
    pynvml.NVML_PERF_POLICY_BOARD_LIMIT, pynvml.NVML_PERF_POLICY_LOW_UTILIZATION,
    pynvml.NVML_PERF_POLICY_RELIABILITY, pynvml.NVML_PERF_POLICY_TOTAL_APP_CLOCKS,
    pynvml.NVML_PERF_POLICY_TOTAL_BASE_CLOCKS,
)


def translate(exc: pynvml.NVMLError, what: str) -> DriverError:
    """The DriverError that tells the collector what an NVML error means for `what`."""
    code = exc.value
    if code in _UNSUPPORTED_CODES:
        return NotSupported(f"{what}: {exc}")
    if code == pynvml.NVML_ERROR_NO_PERMISSION:
        return NoPermission(f"{what}: {exc}")
    if code in _NO_DATA_CODES:
        return NoData(f"{what}: {exc}")
    return GpuLost(f"{what}: {exc}")


def _guard(query: Callable[[], Values], what: str) -> Reading:
    def read() -> Values:
        try:
            return query()
        except pynvml.NVMLError as exc:
            raise translate(exc, what) from None
        except pynvml.NVMLLibraryMismatchError as exc:
            raise NotSupported(f"{what}: {exc}") from None

    return read


def _field_value(fv: Any) -> float | None:
    if fv.nvmlReturn != pynvml.NVML_SUCCESS:
        return None
    member = _VALUE_MEMBERS.get(fv.valueType)
    return float(getattr(fv.value, member)) if member is not None else None


_VALUE_MEMBERS: dict[int, str] = {
    pynvml.NVML_VALUE_TYPE_DOUBLE: "dVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
    pynvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
    pynvml.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
    pynvml.NVML_VALUE_TYPE_UNSIGNED_SHORT: "usVal",
}
"""The member of a field value's union that holds each value type."""


def _newer_else_older(newer: Callable[[], Values], older: Callable[[], Values],
                      missing: tuple[int, ...]) -> Callable[[], Values]:
    """`newer` until the driver answers it with one of the `missing` codes, then `older` for good."""
    use_newer = True

    def query() -> Values:
        nonlocal use_newer
        if use_newer:
            try:
                return newer()
            except pynvml.NVMLError as exc:
                if exc.value not in missing:
                    raise
                use_newer = False
        return older()

    return query


def _memory_query(h: Handle) -> Callable[[], Values]:
    def v2() -> Values:
        m = pynvml.nvmlDeviceGetMemoryInfo(h, version=pynvml.nvmlMemory_v2)
        return (float(m.used), float(m.free), float(m.total), float(m.reserved))

    def v1() -> Values:  # drivers before R510: v1 only, which counts reserved memory as used
        m = pynvml.nvmlDeviceGetMemoryInfo(h)
        return (float(m.used), float(m.free), float(m.total), None)

    return _newer_else_older(v2, v1, (pynvml.NVML_ERROR_FUNCTION_NOT_FOUND,
                                      pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH))


def _throttle_query(h: Handle) -> Callable[[], Values]:
    # renamed in R535; older drivers only know the throttle name
    return _newer_else_older(lambda: (float(pynvml.nvmlDeviceGetCurrentClocksEventReasons(h)),),
                             lambda: (float(pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(h)),),
                             (pynvml.NVML_ERROR_FUNCTION_NOT_FOUND,))


def _violation_query(h: Handle) -> Callable[[], Values]:
    skip: set[int] = set()  # policies this GPU does not report: asked once

    def query() -> Values:
        out: list[float | None] = []
        for policy in _POLICIES:
            if policy in skip:
                out.append(None)
                continue
            try:
                # nanoseconds since the driver loaded
                out.append(pynvml.nvmlDeviceGetViolationStatus(h, policy).violationTime / 1e9)
            except pynvml.NVMLError as exc:
                if exc.value not in _UNSUPPORTED_CODES:
                    raise
                skip.add(policy)
                out.append(None)
        if len(skip) == len(_POLICIES):  # no violation counters at all: one "not supported", not eight
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return tuple(out)

    return query


def _queries(h: Handle) -> dict[str, Callable[[], Values]]:
    """Device readings (sources.DEVICE_READINGS) bound to one handle."""
    get_util = pynvml.nvmlDeviceGetUtilizationRates

    def utilization() -> Values:
        u = get_util(h)
        return (u.gpu / 100.0, u.memory / 100.0)

    def field_values() -> Values:
        values = pynvml.nvmlDeviceGetFieldValues(h, _FIELD_IDS)
        power = _field_value(values[0])
        return (None if power is None else power / 1000.0, _field_value(values[1]))

    def nvlink() -> Values:
        values = pynvml.nvmlDeviceGetFieldValues(h, _NVLINK_IDS)
        out = tuple(None if (v := _field_value(fv)) is None else v * scale
                    for fv, scale in zip(values, _NVLINK_SCALES, strict=True))
        if all(v is None for v in out):  # a PCIe-only board: NVLink is not there at all
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return out

    def clocks() -> Values:
        return (pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM) * 1e6,
                pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_MEM) * 1e6)

    def pcie() -> Values:
        return (pynvml.nvmlDeviceGetPcieThroughput(h, pynvml.NVML_PCIE_UTIL_TX_BYTES) * _PCIE_KB,
                pynvml.nvmlDeviceGetPcieThroughput(h, pynvml.NVML_PCIE_UTIL_RX_BYTES) * _PCIE_KB)

    def ecc() -> Values:
        return (float(pynvml.nvmlDeviceGetTotalEccErrors(h, pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED,
                                                         pynvml.NVML_VOLATILE_ECC)),
                float(pynvml.nvmlDeviceGetTotalEccErrors(h, pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                                                         pynvml.NVML_VOLATILE_ECC)))

    def retired_pages() -> Values:
        cause = pynvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS
        single = len(pynvml.nvmlDeviceGetRetiredPages(h, cause))
        double = len(pynvml.nvmlDeviceGetRetiredPages(h, pynvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR))
        return (float(single), float(double), float(pynvml.nvmlDeviceGetRetiredPagesPendingStatus(h)))

    return {
        "utilization": utilization,
        "encoder": lambda: (pynvml.nvmlDeviceGetEncoderUtilization(h)[0] / 100.0,),
        "decoder": lambda: (pynvml.nvmlDeviceGetDecoderUtilization(h)[0] / 100.0,),
        "memory": _memory_query(h),
        "power": lambda: (pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0,),
        "field_values": field_values,
        "power_limit": lambda: (pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0,),
        "energy": lambda: (pynvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0,),
        "temperature": lambda: (float(pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)),),
        "clocks": clocks,
        "pcie": pcie,
        "pcie_replay": lambda: (float(pynvml.nvmlDeviceGetPcieReplayCounter(h)),),
        "fan": lambda: (pynvml.nvmlDeviceGetFanSpeed(h) / 100.0,),
        "throttle": _throttle_query(h),
        "violation": _violation_query(h),
        "nvlink": nvlink,
        "ecc": ecc,
        "remapped_rows": lambda: tuple(float(v) for v in pynvml.nvmlDeviceGetRemappedRows(h)),
        "retired_pages": retired_pages,
        "mig_mode": lambda: (float(pynvml.nvmlDeviceGetMigMode(h)[0]),),
    }


def _address(handle: Handle) -> int:
    return ctypes.cast(handle, ctypes.c_void_p).value or 0


def mig_profile(name: str) -> str:
    """'NVIDIA A100-SXM4-40GB MIG 3g.20gb' -> '3g.20gb'."""
    _, sep, profile = name.rpartition("MIG ")
    return profile.strip() if sep else name


class NvmlDriver:
    """GpuDriver over NVML. `open` raises NvmlUnavailable when libnvidia-ml.so.1 or the driver is missing."""

    simulated = False

    def __init__(self) -> None:
        self._opened = 0
        self._handles: dict[int, Handle] = {}
        self._uuids: dict[int, str] = {}
        self._mig: dict[tuple[int, int], Handle] = {}
        self._event_set: Any = None
        self._watched: set[int] = set()
        self._by_address: dict[int, int] = {}
        self._util_seen: dict[int, int] = {}
        self._gpm: dict[int, GpmSampler] = {}

    def open(self) -> None:
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError_LibraryNotFound:
            raise NvmlUnavailable(
                "NVML library libnvidia-ml.so.1 not found: no NVIDIA driver on this host (or it is not "
                "visible in this container). GPU collection is off; the other collectors keep running."
            ) from None
        except pynvml.NVMLError_DriverNotLoaded:
            raise NvmlUnavailable(
                "NVML found no loaded NVIDIA kernel driver (is nvidia.ko loaded, and /dev/nvidia* visible?). "
                "GPU collection is off; the other collectors keep running."
            ) from None
        except pynvml.NVMLError as exc:
            raise NvmlUnavailable(f"NVML failed to initialise: {exc}. GPU collection is off.") from None
        self._opened += 1

    def close(self) -> None:
        if not self._opened:
            return
        for sampler in self._gpm.values():
            sampler.free()
        self._gpm.clear()
        if self._event_set is not None:
            try:
                pynvml.nvmlEventSetFree(self._event_set)
            except pynvml.NVMLError as exc:
                log.debug("nvmlEventSetFree: %s", exc)
            self._event_set = None
            self._watched.clear()
            self._by_address.clear()
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError as exc:
            log.debug("nvmlShutdown: %s", exc)
        self._opened -= 1

    def devices(self) -> tuple[DeviceInfo, ...]:
        try:
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            raise GpuLost(f"nvmlDeviceGetCount: {exc}") from None
        found: list[DeviceInfo] = []
        for index in range(count):
            try:
                found.append(self._describe(index, pynvml.nvmlDeviceGetHandleByIndex(index)))
            except pynvml.NVMLError as exc:
                log.warning("GPU %d could not be read at discovery: %s", index, exc)
                found.append(DeviceInfo(index, "", "", "", lost=True))
        return tuple(found)

    def _describe(self, index: int, handle: Handle) -> DeviceInfo:
        uuid = pynvml.nvmlDeviceGetUUID(handle)
        model = pynvml.nvmlDeviceGetName(handle)
        try:
            pci = pynvml.nvmlDeviceGetPciInfo(handle)
            bus = pci.busId.decode() if isinstance(pci.busId, bytes) else str(pci.busId)
        except pynvml.NVMLError:
            bus = ""
        self._handles[index] = handle
        self._uuids[index] = uuid
        self._by_address[_address(handle)] = index
        return DeviceInfo(index, uuid, model, bus)

    def refresh(self, index: int) -> DeviceInfo:
        try:
            uuid = self._uuids.get(index)
            handle = (pynvml.nvmlDeviceGetHandleByUUID(uuid) if uuid
                      else pynvml.nvmlDeviceGetHandleByIndex(index))
            info = self._describe(index, handle)
        except pynvml.NVMLError as exc:
            raise GpuLost(f"re-acquiring GPU {index}: {exc}") from None
        if index in self._watched:
            self._watched.discard(index)
            try:
                self.watch_xid(index)
            except DriverError as exc:
                log.debug("GPU %d: XID events not re-registered: %s", index, exc)
        return info

    def reader(self, index: int, reading: str) -> Reading:
        if reading == "gpm":
            return self._gpm_reader(index)
        query = _queries(self._handles[index]).get(reading)
        if query is None:
            raise NotSupported(f"unknown reading {reading!r}")
        return _guard(query, f"GPU {index} {reading}")

    def _gpm_reader(self, index: int) -> Reading:
        """A new sampler per plan (a recovered GPU gets fresh samples), primed now so the first cycle
        already has metrics; NotSupported or NoPermission here drops GPM from the plan for good."""
        what = f"GPU {index} gpm"
        old = self._gpm.pop(index, None)
        if old is not None:
            old.free()
        sampler = GpmSampler(self._handles[index], what)
        try:
            sampler.prime()
        except pynvml.NVMLError as exc:
            error = translate(exc, what)
            if isinstance(error, NotSupported | NoPermission):
                sampler.free()
                if exc.value == pynvml.NVML_ERROR_FUNCTION_NOT_FOUND:
                    raise NotSupported(f"{what}: the driver has no GPM calls (needs R520 or newer)") from None
                raise error from None
            # a transient failure: the sampler primes itself on its first call instead
        self._gpm[index] = sampler
        return _guard(sampler, what)

    def processes(self, index: int) -> tuple[ProcessUsage, ...]:
        try:
            procs = pynvml.nvmlDeviceGetComputeRunningProcesses(self._handles[index])
        except pynvml.NVMLError as exc:
            raise translate(exc, f"GPU {index} processes") from None
        except pynvml.NVMLLibraryMismatchError as exc:
            raise NotSupported(f"GPU {index} processes: {exc}") from None
        return tuple(
            ProcessUsage(int(p.pid), None if p.usedGpuMemory is None else float(p.usedGpuMemory)) for p in procs
        )

    def process_utilization(self, index: int) -> Mapping[int, float]:
        since = self._util_seen.get(index, 0)
        try:
            samples = pynvml.nvmlDeviceGetProcessesUtilizationInfo(self._handles[index], since)
        except pynvml.NVMLError as exc:
            if exc.value in (pynvml.NVML_SUCCESS, pynvml.NVML_ERROR_NOT_FOUND):
                return {}  # no sample since `since` (pynvml raises even for a plain "none")
            raise translate(exc, f"GPU {index} process utilization") from None
        latest: dict[int, tuple[int, float]] = {}
        newest = since
        for sample in samples:
            stamp = int(sample.timeStamp)
            newest = max(newest, stamp)
            pid = int(sample.pid)
            if pid not in latest or stamp >= latest[pid][0]:
                latest[pid] = (stamp, sample.smUtil / 100.0)
        self._util_seen[index] = newest
        return {pid: util for pid, (_, util) in latest.items()}

    def process_name(self, pid: int) -> str | None:
        try:
            name = pynvml.nvmlSystemGetProcessName(pid)
        except pynvml.NVMLError:
            return None
        return str(name) or None

    def mig_devices(self, index: int) -> tuple[MigDevice, ...]:
        handle = self._handles[index]
        try:
            if pynvml.nvmlDeviceGetMigMode(handle)[0] != pynvml.NVML_DEVICE_MIG_ENABLE:
                return ()
            slots = pynvml.nvmlDeviceGetMaxMigDeviceCount(handle)
        except pynvml.NVMLError as exc:
            raise translate(exc, f"GPU {index} MIG mode") from None
        found: list[MigDevice] = []
        for slot in range(slots):
            try:
                mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            except pynvml.NVMLError as exc:
                if exc.value == pynvml.NVML_ERROR_NOT_FOUND:
                    continue
                raise translate(exc, f"GPU {index} MIG slot {slot}") from None
            try:
                found.append(MigDevice(
                    slot=slot,
                    uuid=pynvml.nvmlDeviceGetUUID(mig),
                    profile=mig_profile(pynvml.nvmlDeviceGetName(mig)),
                    gpu_instance=pynvml.nvmlDeviceGetGpuInstanceId(mig),
                    compute_instance=pynvml.nvmlDeviceGetComputeInstanceId(mig),
                ))
            except pynvml.NVMLError as exc:
                raise translate(exc, f"GPU {index} MIG slot {slot}") from None
            self._mig[(index, slot)] = mig
        return tuple(found)

    def mig_reader(self, index: int, slot: int, reading: str) -> Reading:
        if reading not in ("memory", "utilization"):
            raise NotSupported(f"reading {reading!r} on a MIG instance")
        query = _queries(self._mig[(index, slot)])[reading]
        return _guard(query, f"GPU {index} MIG slot {slot} {reading}")

    def watch_xid(self, index: int) -> None:
        if index in self._watched:
            return
        try:
            if self._event_set is None:
                self._event_set = pynvml.nvmlEventSetCreate()
            pynvml.nvmlDeviceRegisterEvents(self._handles[index], pynvml.nvmlEventTypeXidCriticalError,
                                            self._event_set)
        except pynvml.NVMLError as exc:
            error = translate(exc, f"GPU {index} XID events")
            raise (error if isinstance(error, NotSupported | NoPermission) else NotSupported(str(error))) from None
        self._watched.add(index)

    def poll_xid(self) -> tuple[tuple[int, int], ...]:
        if self._event_set is None:
            return ()
        events: list[tuple[int, int]] = []
        for _ in range(10_000):  # a bound, in case a broken driver never says "no more"
            try:
                data = pynvml.nvmlEventSetWait_v2(self._event_set, 0)
            except pynvml.NVMLError as exc:
                if exc.value != pynvml.NVML_ERROR_TIMEOUT:
                    log.debug("nvmlEventSetWait: %s", exc)  # e.g. a lost GPU: its own reads report it
                break
            if not data.eventType & pynvml.nvmlEventTypeXidCriticalError:
                continue
            index = self._by_address.get(_address(data.device))
            if index is not None:
                events.append((index, int(data.eventData)))
        return tuple(events)
