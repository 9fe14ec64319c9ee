"""Every GPU field campwatch knows how to read: which driver reading yields it, its kind and unit.

A driver (NVML or simulated) implements each reading in DEVICE_READINGS as a call returning one value
per listed field, in that order, in base units, with None for a value this device lacks. Fields of
the `xid`, `processes` and `mig` readings come from dedicated driver calls instead. The fields file
(fields.csv) chooses among these fields; it cannot invent new ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

Kind: TypeAlias = Literal["gauge", "counter"]
Exposition: TypeAlias = Literal["plain", "energy", "throttle", "xid", "process", "mig"]
"""How a field becomes exported points: one per GPU (plain), accumulated from counter differences
(energy), decoded per reason (throttle), per XID code, per process, or per MIG instance."""

PREFIX = "campwatch_gpu_"

UNITS: frozenset[str] = frozenset(
    {"ratio", "bytes", "watts", "joules", "hertz", "celsius", "bytes_per_second",
     "errors", "rows", "pages", "bool", "bitmask"}
)

# reading, field, kind, unit, exposition. Order within a reading is the order of the values it returns.
_TABLE: tuple[tuple[str, str, Kind, str, Exposition], ...] = (
    ("utilization", "utilization_ratio", "gauge", "ratio", "plain"),
    ("utilization", "memory_utilization_ratio", "gauge", "ratio", "plain"),
    ("encoder", "encoder_utilization_ratio", "gauge", "ratio", "plain"),
    ("decoder", "decoder_utilization_ratio", "gauge", "ratio", "plain"),
    ("memory", "memory_used_bytes", "gauge", "bytes", "plain"),
    ("memory", "memory_free_bytes", "gauge", "bytes", "plain"),
    ("memory", "memory_total_bytes", "gauge", "bytes", "plain"),
    ("memory", "memory_reserved_bytes", "gauge", "bytes", "plain"),
    ("power", "power_watts", "gauge", "watts", "plain"),
    ("field_values", "power_instant_watts", "gauge", "watts", "plain"),
    ("field_values", "memory_temperature_celsius", "gauge", "celsius", "plain"),
    ("power_limit", "power_limit_watts", "gauge", "watts", "plain"),
    ("energy", "energy_joules_total", "counter", "joules", "energy"),
    ("temperature", "temperature_celsius", "gauge", "celsius", "plain"),
    ("clocks", "sm_clock_hz", "gauge", "hertz", "plain"),
    ("clocks", "memory_clock_hz", "gauge", "hertz", "plain"),
    ("pcie", "pcie_tx_bytes_per_second", "gauge", "bytes_per_second", "plain"),
    ("pcie", "pcie_rx_bytes_per_second", "gauge", "bytes_per_second", "plain"),
    ("pcie_replay", "pcie_replay_errors_total", "counter", "errors", "plain"),
    ("fan", "fan_speed_ratio", "gauge", "ratio", "plain"),
    ("throttle", "throttle_reasons_bitmask", "gauge", "bitmask", "throttle"),
    ("ecc", "ecc_corrected_errors_total", "counter", "errors", "plain"),
    ("ecc", "ecc_uncorrected_errors_total", "counter", "errors", "plain"),
    ("remapped_rows", "remapped_rows_correctable", "gauge", "rows", "plain"),
    ("remapped_rows", "remapped_rows_uncorrectable", "gauge", "rows", "plain"),
    ("remapped_rows", "remapped_rows_pending", "gauge", "bool", "plain"),
    ("remapped_rows", "remapped_rows_failed", "gauge", "bool", "plain"),
    ("retired_pages", "retired_pages_single_bit", "gauge", "pages", "plain"),
    ("retired_pages", "retired_pages_double_bit", "gauge", "pages", "plain"),
    ("retired_pages", "retired_pages_pending", "gauge", "bool", "plain"),
    ("mig_mode", "mig_enabled", "gauge", "bool", "plain"),
    ("xid", "xid_errors_total", "counter", "errors", "xid"),
    ("processes", "process_memory_bytes", "gauge", "bytes", "process"),
    ("processes", "process_utilization_ratio", "gauge", "ratio", "process"),
    ("mig", "mig_memory_used_bytes", "gauge", "bytes", "mig"),
    ("mig", "mig_memory_total_bytes", "gauge", "bytes", "mig"),
    ("mig", "mig_utilization_ratio", "gauge", "ratio", "mig"),
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
    for reading, name, kind, unit, exposition in _TABLE:
        position = positions.get(reading, 0)
        positions[reading] = position + 1
        known[name] = KnownField(name, reading, position, kind, unit, exposition)
    return known


KNOWN_FIELDS: dict[str, KnownField] = _known()

DEVICE_READINGS: dict[str, tuple[str, ...]] = {}
"""reading -> the fields it returns, in order (the drivers' contract)."""
for _field in KNOWN_FIELDS.values():
    if _field.reading not in SPECIAL_READINGS:
        DEVICE_READINGS.setdefault(_field.reading, ())
        DEVICE_READINGS[_field.reading] += (_field.name,)
