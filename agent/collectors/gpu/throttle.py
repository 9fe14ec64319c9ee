"""Clock-event (throttle) reasons: the NVML bitmask's bits and the names campwatch exports.

Bits from nvml.h `nvmlClocksEventReason*` (formerly `nvmlClocksThrottleReason*`)."""

from __future__ import annotations

THROTTLE_REASONS: tuple[tuple[int, str], ...] = (
    (0x001, "gpu_idle"),
    (0x002, "applications_clocks_setting"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal"),
    (0x040, "hw_thermal"),
    (0x080, "hw_power_brake"),
    (0x100, "display_clock_setting"),
)
"""(bit, reason label). hw_thermal and hw_power_brake are also reported inside hw_slowdown."""


def active_reasons(mask: int) -> tuple[str, ...]:
    """The reasons whose bit is set in `mask`, in table order."""
    return tuple(name for bit, name in THROTTLE_REASONS if mask & bit)
