"""Every GPU field campwatch knows how to read: which driver reading yields it, its kind and unit.

A driver (NVML or simulated) implements each reading in DEVICE_READINGS as a call returning one value
per listed field, in that order, in base units, with None for a value this device lacks. Fields of
the `xid`, `processes` and `mig` readings come from dedicated driver calls instead. The fields file
(fields.csv) chooses among these fields; it cannot invent new ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

Kind: TypeAlias = Literal["gauge", "counter"]
Exposition: TypeAlias = Literal["plain", "energy", "throttle", "violation", "xid", "process", "mig"]
"""How a field becomes exported points: one per GPU (plain), accumulated from counter differences
(energy), decoded per reason (throttle), one family labelled by reason (violation: time throttled),
per XID code, per process, or per MIG instance."""

PREFIX = "campwatch_gpu_"

UNITS: frozenset[str] = frozenset(
    {"ratio", "bytes", "watts", "joules", "hertz", "celsius", "bytes_per_second",
     "errors", "rows", "pages", "bool", "bitmask", "seconds"}
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
    # time throttled per reason (nvmlDeviceGetViolationStatus), in VIOLATION_REASONS' order
    ("violation", "throttle_power_seconds_total", "counter", "seconds", "violation"),
    ("violation", "throttle_thermal_seconds_total", "counter", "seconds", "violation"),
    ("violation", "throttle_sync_boost_seconds_total", "counter", "seconds", "violation"),
    ("violation", "throttle_board_limit_seconds_total", "counter", "seconds", "violation"),
    ("violation", "throttle_low_utilization_seconds_total", "counter", "seconds", "violation"),
    ("violation", "throttle_reliability_seconds_total", "counter", "seconds", "violation"),
    ("violation", "throttle_app_clocks_seconds_total", "counter", "seconds", "violation"),
    ("violation", "throttle_base_clocks_seconds_total", "counter", "seconds", "violation"),
    # profiling-grade activity over the whole cycle (GPM, Hopper and newer; gpm.py)
    ("gpm", "sm_active_ratio", "gauge", "ratio", "plain"),
    ("gpm", "sm_occupancy_ratio", "gauge", "ratio", "plain"),
    ("gpm", "tensor_active_ratio", "gauge", "ratio", "plain"),
    ("gpm", "dram_bandwidth_ratio", "gauge", "ratio", "plain"),
    ("gpm", "pcie_tx_average_bytes_per_second", "gauge", "bytes_per_second", "plain"),
    ("gpm", "pcie_rx_average_bytes_per_second", "gauge", "bytes_per_second", "plain"),
    ("gpm", "nvlink_tx_bytes_per_second", "gauge", "bytes_per_second", "plain"),
    ("gpm", "nvlink_rx_bytes_per_second", "gauge", "bytes_per_second", "plain"),
    # NVLink counters through field values (every NVLink GPU, GPM or not)
    ("nvlink", "nvlink_tx_bytes_total", "counter", "bytes", "plain"),
    ("nvlink", "nvlink_rx_bytes_total", "counter", "bytes", "plain"),
    ("nvlink", "nvlink_crc_flit_errors_total", "counter", "errors", "plain"),
    ("nvlink", "nvlink_crc_data_errors_total", "counter", "errors", "plain"),
    ("nvlink", "nvlink_replay_errors_total", "counter", "errors", "plain"),
    ("nvlink", "nvlink_recovery_errors_total", "counter", "errors", "plain"),
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
