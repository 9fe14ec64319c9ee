"""Which GPUs this sidecar reads (and so stores and costs): `gpu.devices`, else the devices named in
NVIDIA_VISIBLE_DEVICES, else CUDA_VISIBLE_DEVICES, else every GPU NVML shows.

An entry is a GPU index (`0`), a GPU UUID (`GPU-...`), a MIG UUID (`MIG-...`, or the older
`MIG-GPU-<uuid>/<gi>/<ci>`), or `<gpu index>:<MIG index>`; `all` means every GPU, `none` and `void`
(NVIDIA container runtime words) mean none. A MIG entry selects its parent GPU and, of its MIG
instances, only the ones named.

Inside a container the NVIDIA runtime has already narrowed what NVML shows to the devices in
NVIDIA_VISIBLE_DEVICES, renumbering them from 0: when the variable lists plain indices and NVML
shows exactly that many GPUs, they are taken as the ones meant. An entry that matches no GPU is a
ConfigError naming it, its source, and what NVML shows."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from agent.collectors.gpu.driver import DeviceInfo, MigDevice
from agent.errors import ConfigError, DriverError, Problem

ENV_VARIABLES: tuple[str, ...] = ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")
_ALL = "all"
_NONE = frozenset({"none", "void"})


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    """The devices asked for and where the ask came from. `ids` None means every GPU."""

    source: str
    ids: tuple[str, ...] | None
    from_environment: bool = False

    def describe(self) -> str:
        if self.ids is None:
            return f"every GPU ({self.source})"
        return f"{', '.join(self.ids) or 'none'} ({self.source})"


@dataclass(frozen=True, slots=True)
class Scope:
    """The GPUs to read, and for a GPU in `mig` the only MIG instance UUIDs to read on it."""

    devices: tuple[DeviceInfo, ...]
    mig: Mapping[int, frozenset[str]] = field(default_factory=dict)


def requested_devices(configured: Sequence[str], environ: Mapping[str, str]) -> DeviceRequest:
    if configured:
        return _parse("gpu.devices", ",".join(configured), from_environment=False)
    for variable in ENV_VARIABLES:
        raw = environ.get(variable)
        if raw is None or (variable == "NVIDIA_VISIBLE_DEVICES" and not raw.strip()):
            continue  # an empty NVIDIA_VISIBLE_DEVICES is the runtime's "not set"
        return _parse(variable, raw, from_environment=True)
    return DeviceRequest("every GPU NVML shows", None)


def _parse(source: str, raw: str, *, from_environment: bool) -> DeviceRequest:
    value = raw.strip()
    if value.lower() == _ALL:
        return DeviceRequest(source, None, from_environment)
    if value.lower() in _NONE or not value:  # CUDA_VISIBLE_DEVICES="" hides every device
        return DeviceRequest(source, (), from_environment)
    ids = tuple(part.strip() for part in value.split(",") if part.strip())
    return DeviceRequest(source, ids, from_environment)


def _mig_parent(entry: str) -> tuple[str, str] | None:
    """MIG-GPU-<uuid>/<gi>/<ci> (drivers before R470) -> (GPU uuid, "gi/ci")."""
    if not entry.upper().startswith("MIG-GPU-"):
        return None
    parent, _, rest = entry[4:].partition("/")
    return parent, rest


def select(request: DeviceRequest, devices: Sequence[DeviceInfo],
           mig_devices: Callable[[int], Sequence[MigDevice]]) -> Scope:
    """The devices of `request` among those NVML shows; ConfigError for any entry matching none."""
    if request.ids is None:
        return Scope(tuple(devices))
    ids = request.ids
    if request.from_environment and ids and all(i.isdigit() for i in ids) and len(set(ids)) == len(devices):
        return Scope(tuple(devices))  # the container runtime already narrowed NVML to these
    by_index = {str(d.index): d for d in devices}
    by_uuid = {d.uuid.lower(): d for d in devices if d.uuid}
    migs: dict[int, tuple[MigDevice, ...]] = {}

    def mig_of(index: int) -> tuple[MigDevice, ...]:
        if index not in migs:
            try:
                migs[index] = tuple(mig_devices(index))
            except DriverError:
                migs[index] = ()
        return migs[index]

    chosen: dict[int, DeviceInfo] = {}
    mig: dict[int, set[str]] = {}
    problems: list[Problem] = []
    for entry in ids:
        key = entry.lower()
        if key in by_index or key in by_uuid:
            device = by_index.get(key) or by_uuid[key]
            chosen[device.index] = device
            mig.pop(device.index, None)  # the whole GPU was asked for
            continue
        found = _find_mig(entry, devices, mig_of)
        if found is None:
            problems.append(Problem(request.source, f"{entry!r} matches no GPU; NVML shows "
                                                    f"{_shown(devices, mig_of)}"))
            continue
        device, instance = found
        if device.index not in chosen or device.index in mig:
            chosen[device.index] = device
            mig.setdefault(device.index, set()).add(instance.uuid)
    if problems:
        raise ConfigError(request.source, problems)
    ordered = tuple(chosen[i] for i in sorted(chosen))
    return Scope(ordered, {index: frozenset(uuids) for index, uuids in mig.items()})


def _find_mig(entry: str, devices: Sequence[DeviceInfo],
              mig_of: Callable[[int], tuple[MigDevice, ...]]) -> tuple[DeviceInfo, MigDevice] | None:
    gpu_part, colon, slot = entry.partition(":")
    legacy = _mig_parent(entry)
    for device in devices:
        if colon and gpu_part == str(device.index) and slot.isdigit():
            for instance in mig_of(device.index):
                if instance.slot == int(slot):
                    return device, instance
        elif legacy is not None and device.uuid.lower() == legacy[0].lower():
            for instance in mig_of(device.index):
                if f"{instance.gpu_instance}/{instance.compute_instance}" == legacy[1]:
                    return device, instance
        elif entry.upper().startswith("MIG-"):
            for instance in mig_of(device.index):
                if instance.uuid.lower() == entry.lower():
                    return device, instance
    return None


def _shown(devices: Sequence[DeviceInfo], mig_of: Callable[[int], tuple[MigDevice, ...]]) -> str:
    if not devices:
        return "no GPU"
    parts = []
    for device in devices:
        text = f"{device.index} {device.uuid or '(unreadable)'}"
        instances = mig_of(device.index)
        if instances:
            text += " [MIG " + ", ".join(f"{m.slot}: {m.uuid}" for m in instances) + "]"
        parts.append(text)
    return "; ".join(parts)
