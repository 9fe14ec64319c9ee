"""Every GPU field campwatch knows how to read, as one table: which driver reading yields it, its
kind, unit and exposition, and whether the store keeps it.

- exported: every field is, whenever the fields file (collectors/gpu/fields.csv, or the user's copy)
  enables it; the fields file is the switch, and it cannot invent fields that are not here.
- `stored`: also kept as a column of gpu_samples (a new stored field needs an Alembic migration).

collectors/gpu/sources.py builds the drivers' contract from this table (a field's position is its
order within its reading); store/schema.py builds the gpu_samples columns from the stored rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

Kind: TypeAlias = Literal["gauge", "counter"]
Exposition: TypeAlias = Literal["plain", "energy", "throttle", "violation", "xid", "process", "mig"]
"""How a field becomes exported points: one per GPU (plain), accumulated from counter differences
(energy), decoded per reason (throttle), one family labelled by reason (violation: time throttled),
per XID code, per process, or per MIG instance."""


@dataclass(frozen=True, slots=True)
class GpuField:
    reading: str
    name: str
    kind: Kind
    unit: str
    exposition: Exposition
    stored: bool = False


# Order within a reading is the order of the values it returns.
GPU_FIELDS: tuple[GpuField, ...] = (
    GpuField("utilization", "utilization_ratio", "gauge", "ratio", "plain", stored=True),
    GpuField("utilization", "memory_utilization_ratio", "gauge", "ratio", "plain", stored=True),
    GpuField("encoder", "encoder_utilization_ratio", "gauge", "ratio", "plain"),
    GpuField("decoder", "decoder_utilization_ratio", "gauge", "ratio", "plain"),
    GpuField("memory", "memory_used_bytes", "gauge", "bytes", "plain", stored=True),
    GpuField("memory", "memory_free_bytes", "gauge", "bytes", "plain"),
    GpuField("memory", "memory_total_bytes", "gauge", "bytes", "plain", stored=True),
    GpuField("memory", "memory_reserved_bytes", "gauge", "bytes", "plain"),
    GpuField("power", "power_watts", "gauge", "watts", "plain", stored=True),
    GpuField("field_values", "power_instant_watts", "gauge", "watts", "plain"),
    GpuField("field_values", "memory_temperature_celsius", "gauge", "celsius", "plain", stored=True),
    GpuField("power_limit", "power_limit_watts", "gauge", "watts", "plain", stored=True),
    GpuField("energy", "energy_joules_total", "counter", "joules", "energy", stored=True),
    GpuField("temperature", "temperature_celsius", "gauge", "celsius", "plain", stored=True),
    GpuField("clocks", "sm_clock_hz", "gauge", "hertz", "plain", stored=True),
    GpuField("clocks", "memory_clock_hz", "gauge", "hertz", "plain", stored=True),
    GpuField("pcie", "pcie_tx_bytes_per_second", "gauge", "bytes_per_second", "plain", stored=True),
    GpuField("pcie", "pcie_rx_bytes_per_second", "gauge", "bytes_per_second", "plain", stored=True),
    GpuField("pcie_replay", "pcie_replay_errors_total", "counter", "errors", "plain"),
    GpuField("fan", "fan_speed_ratio", "gauge", "ratio", "plain"),
    GpuField("throttle", "throttle_reasons_bitmask", "gauge", "bitmask", "throttle", stored=True),
    # time throttled per reason (nvmlDeviceGetViolationStatus), in VIOLATION_REASONS' order
    GpuField("violation", "throttle_power_seconds_total", "counter", "seconds", "violation"),
    GpuField("violation", "throttle_thermal_seconds_total", "counter", "seconds", "violation"),
    GpuField("violation", "throttle_sync_boost_seconds_total", "counter", "seconds", "violation"),
    GpuField("violation", "throttle_board_limit_seconds_total", "counter", "seconds", "violation"),
    GpuField("violation", "throttle_low_utilization_seconds_total", "counter", "seconds", "violation"),
    GpuField("violation", "throttle_reliability_seconds_total", "counter", "seconds", "violation"),
    GpuField("violation", "throttle_app_clocks_seconds_total", "counter", "seconds", "violation"),
    GpuField("violation", "throttle_base_clocks_seconds_total", "counter", "seconds", "violation"),
    # profiling-grade activity over the whole cycle (GPM, Hopper and newer; gpm.py)
    GpuField("gpm", "sm_active_ratio", "gauge", "ratio", "plain", stored=True),
    GpuField("gpm", "sm_occupancy_ratio", "gauge", "ratio", "plain", stored=True),
    GpuField("gpm", "tensor_active_ratio", "gauge", "ratio", "plain", stored=True),
    GpuField("gpm", "dram_bandwidth_ratio", "gauge", "ratio", "plain", stored=True),
    GpuField("gpm", "pcie_tx_average_bytes_per_second", "gauge", "bytes_per_second", "plain"),
    GpuField("gpm", "pcie_rx_average_bytes_per_second", "gauge", "bytes_per_second", "plain"),
    GpuField("gpm", "nvlink_tx_bytes_per_second", "gauge", "bytes_per_second", "plain", stored=True),
    GpuField("gpm", "nvlink_rx_bytes_per_second", "gauge", "bytes_per_second", "plain", stored=True),
    # NVLink counters through field values (every NVLink GPU, GPM or not)
    GpuField("nvlink", "nvlink_tx_bytes_total", "counter", "bytes", "plain"),
    GpuField("nvlink", "nvlink_rx_bytes_total", "counter", "bytes", "plain"),
    GpuField("nvlink", "nvlink_crc_flit_errors_total", "counter", "errors", "plain"),
    GpuField("nvlink", "nvlink_crc_data_errors_total", "counter", "errors", "plain"),
    GpuField("nvlink", "nvlink_replay_errors_total", "counter", "errors", "plain"),
    GpuField("nvlink", "nvlink_recovery_errors_total", "counter", "errors", "plain"),
    GpuField("ecc", "ecc_corrected_errors_total", "counter", "errors", "plain", stored=True),
    GpuField("ecc", "ecc_uncorrected_errors_total", "counter", "errors", "plain", stored=True),
    GpuField("remapped_rows", "remapped_rows_correctable", "gauge", "rows", "plain"),
    GpuField("remapped_rows", "remapped_rows_uncorrectable", "gauge", "rows", "plain"),
    GpuField("remapped_rows", "remapped_rows_pending", "gauge", "bool", "plain"),
    GpuField("remapped_rows", "remapped_rows_failed", "gauge", "bool", "plain"),
    GpuField("retired_pages", "retired_pages_single_bit", "gauge", "pages", "plain"),
    GpuField("retired_pages", "retired_pages_double_bit", "gauge", "pages", "plain"),
    GpuField("retired_pages", "retired_pages_pending", "gauge", "bool", "plain"),
    GpuField("mig_mode", "mig_enabled", "gauge", "bool", "plain"),
    GpuField("xid", "xid_errors_total", "counter", "errors", "xid", stored=True),
    GpuField("processes", "process_memory_bytes", "gauge", "bytes", "process"),
    GpuField("processes", "process_utilization_ratio", "gauge", "ratio", "process"),
    GpuField("mig", "mig_memory_used_bytes", "gauge", "bytes", "mig"),
    GpuField("mig", "mig_memory_total_bytes", "gauge", "bytes", "mig"),
    GpuField("mig", "mig_utilization_ratio", "gauge", "ratio", "mig"),
)

GPU_STORED_FIELDS: tuple[str, ...] = tuple(f.name for f in GPU_FIELDS if f.stored)
"""GPU sample values kept in the store (one gpu_samples column each); the rest is exported only."""
