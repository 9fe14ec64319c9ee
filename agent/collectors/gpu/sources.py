"""Every GPU field campwatch knows how to read: which driver reading yields it, its kind and unit.

A driver (NVML or simulated) implements each reading in DEVICE_READINGS as a call returning one value
per listed field, in that order, in base units, with None for a value this device lacks. Fields of
the `xid`, `processes` and `mig` readings come from dedicated driver calls instead. The fields file
(fields.csv) chooses among these fields; it cannot invent new ones. The fields themselves are one
table on the ground floor (agent/concepts/gpu.py), which also says which ones the store keeps."""

from __future__ import annotations

from dataclasses import dataclass

from agent.concepts.gpu import GPU_FIELDS, Exposition, Kind

PREFIX = "campwatch_gpu_"

UNITS: frozenset[str] = frozenset(
    {"ratio", "bytes", "watts", "joules", "hertz", "celsius", "bytes_per_second",
     "errors", "rows", "pages", "bool", "bitmask"}
)

SPECIAL_READINGS = frozenset({"xid", "processes", "mig"})

MIG_SOURCES: dict[str, tuple[str, int]] = {
    "mig_memory_used_bytes": ("memory", 0),
    "mig_memory_total_bytes": ("memory", 2),
    "mig_utilization_ratio": ("utilization", 0),
}
"""MIG fields: the device reading applied to each MIG instance, and the value's position in it."""

THROTTLE_METRIC = PREFIX + "throttle_active"


@dataclass(frozen=True, slots=True)
class KnownField:
    name: str
    reading: str
    position: int
    kind: Kind
    unit: str
    exposition: Exposition

    @property
    def metric(self) -> str:
        """The exported family name."""
        return THROTTLE_METRIC if self.exposition == "throttle" else PREFIX + self.name


def _known() -> dict[str, KnownField]:
    positions: dict[str, int] = {}
    known: dict[str, KnownField] = {}
    for f in GPU_FIELDS:
        position = positions.get(f.reading, 0)
        positions[f.reading] = position + 1
        known[f.name] = KnownField(f.name, f.reading, position, f.kind, f.unit, f.exposition)
    return known


KNOWN_FIELDS: dict[str, KnownField] = _known()

DEVICE_READINGS: dict[str, tuple[str, ...]] = {}
"""reading -> the fields it returns, in order (the drivers' contract)."""
for _field in KNOWN_FIELDS.values():
    if _field.reading not in SPECIAL_READINGS:
        DEVICE_READINGS.setdefault(_field.reading, ())
        DEVICE_READINGS[_field.reading] += (_field.name,)
