"""Energy in joules from differences of a device's energy counter."""

from __future__ import annotations

from agent.counters import increase

DEFAULT_MAX_WATTS = 5000.0
"""Above any single GPU's draw: a step implying more is a glitch, not energy."""

_MIN_ELAPSED_S = 1e-3


class EnergyCounter:
    """Joules consumed since the first reading, never decreasing.

    NVML's counter (mJ since the driver loaded) restarts from zero when the driver reloads: a reading
    below the previous one counts as a restart and adds the new reading (what was used since the
    restart), as Prometheus treats a counter reset. A step larger than `max_watts` over the elapsed
    time is taken as a glitch: it rebases without adding, so the total never spikes."""

    __slots__ = ("_last_raw", "_last_t", "max_watts", "total")

    def __init__(self, max_watts: float = DEFAULT_MAX_WATTS) -> None:
        self.max_watts = max_watts
        self.total = 0.0
        self._last_raw: float | None = None
        self._last_t = 0.0

    def update(self, raw_joules: float, t: float) -> float:
        """Feed the counter's value at monotonic time `t` (seconds); returns the running total."""
        last = self._last_raw
        if last is not None:
            delta = increase(last, raw_joules)
            if delta <= self.max_watts * max(t - self._last_t, _MIN_ELAPSED_S):
                self.total += delta
        self._last_raw = raw_joules
        self._last_t = t
        return self.total
