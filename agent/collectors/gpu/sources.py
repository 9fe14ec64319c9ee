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
     "errors", "rows", "pages", "bool", "bitmask", "seconds"}
)

SPECIAL_READINGS = frozenset({"xid", "processes", "mig"})

MIG_SOURCES: dict[str, tuple[str, int]] = {
    "mig_memory_used_bytes": ("memory", 0),
    "mig_memory_total_bytes": ("memory", 2),
    "mig_utilization_ratio": ("utilization", 0),
}
"""MIG fields: the device reading applied to each MIG instance, and the value's position in it."""

THROTTLE_METRIC = PREFIX + "throttle_active"
VIOLATION_METRIC = PREFIX + "throttle_seconds_total"

VIOLATION_REASONS: dict[str, str] = {
    "throttle_power_seconds_total": "power",
    "throttle_thermal_seconds_total": "thermal",
    "throttle_sync_boost_seconds_total": "sync_boost",
    "throttle_board_limit_seconds_total": "board_limit",
    "throttle_low_utilization_seconds_total": "low_utilization",
    "throttle_reliability_seconds_total": "reliability",
    "throttle_app_clocks_seconds_total": "app_clocks",
    "throttle_base_clocks_seconds_total": "base_clocks",
}
"""Violation fields -> the `reason` label of campwatch_gpu_throttle_seconds_total, in the order of the
"violation" reading (NVML_PERF_POLICY_POWER, THERMAL, SYNC_BOOST, BOARD_LIMIT, LOW_UTILIZATION,
RELIABILITY, TOTAL_APP_CLOCKS, TOTAL_BASE_CLOCKS)."""


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
        if self.exposition == "throttle":
            return THROTTLE_METRIC
        if self.exposition == "violation":
            return VIOLATION_METRIC
        return PREFIX + self.name


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
