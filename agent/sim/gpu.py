"""A simulated GPU behind the same driver interface as the NVML reader (agent.collectors.gpu.driver),
for `campwatch demo` and tests on machines without NVIDIA hardware.

Utilization follows the busy fraction the demo's model server reports (`load`), with noise; power
moves between idle (~70 W) and the limit (700 W) with utilization; the energy counter integrates that
power over real elapsed time; memory used sits near 90 % of the board, as a vLLM server that
preallocates its KV cache does. Every model name contains "Simulated", and the collector marks every
row from this driver simulated=True."""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agent.collectors.gpu.driver import DeviceInfo, MigDevice, ProcessUsage, Reading
from agent.errors import NotSupported

_SNAPSHOT_S = 0.05  # readings within one collection cycle see one consistent state
_THERMAL_TAU_S = 30.0
_IDLE_BELOW = 0.05
_GPU_IDLE = 0x001
_SW_POWER_CAP = 0x004
_NVLINK_BYTES_PER_S = 2.5e10  # per direction at full load (an 8-GPU tensor-parallel all-reduce)


@dataclass(slots=True)
class _State:
    t: float
    util: float = 0.0
    power_w: float = 0.0
    power_instant_w: float = 0.0
    energy_j: float = 0.0
    temperature_c: float = 32.0
    memory_used: float = 0.0
    sm_clock_hz: float = 0.0
    throttle: int = _GPU_IDLE
    power_capped_s: float = 0.0  # time throttled by the power cap, as nvmlDeviceGetViolationStatus counts it
    idle_clocked_s: float = 0.0  # time held at low clocks for low utilization
    nvlink_bytes: float = 0.0  # bytes sent (and received) over NVLink since start
    fresh_until: float = float("-inf")
    pending_xids: tuple[int, ...] = ()


class SimulatedGpu:
    """GpuDriver for `count` simulated boards; `load()` returns the current busy fraction 0..1."""

    simulated = True

    def __init__(
        self,
        count: int = 1,
        model: str = "Simulated H100 80GB HBM3",
        load: Callable[[], float] = lambda: 0.0,
        seed: int = 0,
        *,
        memory_total_bytes: float = 85_520_809_984.0,
        idle_watts: float = 70.0,
        limit_watts: float = 700.0,
        kv_cache_fraction: float = 0.9,
        clock: Callable[[], float] = time.monotonic,
        pid: int | None = None,
    ) -> None:
        if count < 1:
            raise ValueError(f"SimulatedGpu count: expected at least 1, got {count}")
        if "Simulated" not in model:
            raise ValueError(f"SimulatedGpu model: expected a name containing 'Simulated', got {model!r}")
        if not 0 < idle_watts < limit_watts:
            raise ValueError(f"SimulatedGpu power: expected 0 < idle_watts < limit_watts, "
                             f"got {idle_watts} and {limit_watts}")
        if not 0 <= kv_cache_fraction < 1:
            raise ValueError(f"SimulatedGpu kv_cache_fraction: expected 0..1, got {kv_cache_fraction}")
        self.count = count
        self.model = model
        self._load = load
        self._seed = seed
        self._memory_total = memory_total_bytes
        self._idle = idle_watts
        self._limit = limit_watts
        self._kv = kv_cache_fraction
        self._clock = clock
        self._pid = os.getpid() if pid is None else pid
        self._rng = [random.Random(seed * 1009 + i) for i in range(count)]
        start = clock()
        self._state = [_State(t=start, power_w=idle_watts, power_instant_w=idle_watts) for _ in range(count)]
        self._watched: set[int] = set()

    # ---- the simulation ----

    def _busy(self) -> float:
        try:
            busy = float(self._load())
        except Exception:  # the demo's model server is another part: its failure must not stop us
            return 0.0
        return 0.0 if math.isnan(busy) else min(1.0, max(0.0, busy))

    def _snapshot(self, index: int) -> _State:
        state = self._state[index]
        now = self._clock()
        if now < state.fresh_until:
            return state
        rng = self._rng[index]
        busy = self._busy()
        util = min(1.0, max(0.0, busy + rng.gauss(0.0, 0.03 if busy > 0 else 0.003)))
        power = self._idle + (self._limit - self._idle) * util + rng.gauss(0.0, 4.0)
        power = min(self._limit, max(self._idle * 0.9, power))
        elapsed = max(0.0, now - state.t)
        state.energy_j += 0.5 * (state.power_w + power) * elapsed  # trapezoid over real elapsed time
        # the time since the last snapshot counts under the reasons that held then
        state.power_capped_s += elapsed if state.throttle & _SW_POWER_CAP else 0.0
        state.idle_clocked_s += elapsed if state.throttle & _GPU_IDLE else 0.0
        state.nvlink_bytes += _NVLINK_BYTES_PER_S * state.util * elapsed
        target = 30.0 + 45.0 * (power - self._idle) / (self._limit - self._idle)
        state.temperature_c += (target - state.temperature_c) * (1.0 - math.exp(-elapsed / _THERMAL_TAU_S))
        state.t = now
        state.util = util
        state.power_w = power
        state.power_instant_w = min(self._limit * 1.05, max(0.0, power + rng.gauss(0.0, 15.0)))
        # vLLM allocates its KV cache at start: memory is high whether or not requests are running.
        state.memory_used = self._memory_total * (self._kv + 0.01 * busy)
        capped = power >= 0.97 * self._limit
        state.sm_clock_hz = (1755e6 if capped else 1980e6) if util >= _IDLE_BELOW else 345e6
        state.throttle = (_SW_POWER_CAP if capped else 0) | (_GPU_IDLE if util < _IDLE_BELOW else 0)
        state.fresh_until = now + _SNAPSHOT_S
        return state

    def _queries(self) -> dict[str, Callable[[_State], tuple[float | None, ...]]]:
        """Device readings (sources.DEVICE_READINGS) computed from a state snapshot, in base units."""
        total = self._memory_total
        reserved = total * 0.006
        limit = self._limit
        return {
            "utilization": lambda s: (s.util, s.util * 0.6),
            "encoder": lambda s: (0.0,),
            "decoder": lambda s: (0.0,),
            "memory": lambda s: (s.memory_used, max(0.0, total - s.memory_used - reserved), total, reserved),
            "power": lambda s: (s.power_w,),
            "field_values": lambda s: (s.power_instant_w, s.temperature_c + 6.0),
            "power_limit": lambda s: (limit,),
            "energy": lambda s: (s.energy_j,),
            "temperature": lambda s: (float(round(s.temperature_c)),),
            "clocks": lambda s: (s.sm_clock_hz, 2619e6),
            "pcie": lambda s: (5e7 * s.util, 2e8 * s.util),
            "pcie_replay": lambda s: (0.0,),
            "throttle": lambda s: (float(s.throttle),),
            "ecc": lambda s: (0.0, 0.0),
            "remapped_rows": lambda s: (0.0, 0.0, 0.0, 0.0),
            "mig_mode": lambda s: (0.0,),
            # GPM as on an H100 decoding: SMs less busy than "utilization" says, memory-bound
            "gpm": lambda s: (0.8 * s.util, 0.3 * s.util, 0.45 * s.util, 0.7 * s.util,
                              5e7 * s.util, 2e8 * s.util, _NVLINK_BYTES_PER_S * s.util,
                              _NVLINK_BYTES_PER_S * s.util),
            # time throttled per reason (power, thermal, sync boost, board limit, low utilization,
            # reliability, application clocks, base clocks)
            "violation": lambda s: (s.power_capped_s, 0.0, 0.0, 0.0, s.idle_clocked_s, 0.0, 0.0, 0.0),
            "nvlink": lambda s: (s.nvlink_bytes, s.nvlink_bytes, 0.0, 0.0, 0.0, 0.0),
            # an SXM board has no fan, and remaps rows instead of retiring pages: "fan" and
            # "retired_pages" are left out, so they report NotSupported like NVML would
        }

    # ---- GpuDriver ----

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def _info(self, index: int) -> DeviceInfo:
        return DeviceInfo(index, f"GPU-simulated-{self._seed:04d}-{index:04d}", self.model,
                          f"00000000:{(0x18 + 0x10 * index) & 0xFF:02X}:00.0")

    def devices(self) -> tuple[DeviceInfo, ...]:
        return tuple(self._info(i) for i in range(self.count))

    def refresh(self, index: int) -> DeviceInfo:
        return self._info(index)

    def reader(self, index: int, reading: str) -> Reading:
        query = self._queries().get(reading)
        if query is None:
            raise NotSupported(f"simulated GPU {index}: {reading} not supported")
        snapshot = self._snapshot
        return lambda: query(snapshot(index))

    def processes(self, index: int) -> tuple[ProcessUsage, ...]:
        # The demo process hosts the simulated model server, so it is the one "using" the GPU.
        return (ProcessUsage(self._pid, self._snapshot(index).memory_used * 0.99),)

    def process_utilization(self, index: int) -> Mapping[int, float]:
        return {self._pid: self._snapshot(index).util}

    def process_name(self, pid: int) -> str | None:
        return "simulated-vllm" if pid == self._pid else None

    def mig_devices(self, index: int) -> tuple[MigDevice, ...]:
        return ()

    def mig_reader(self, index: int, slot: int, reading: str) -> Reading:
        raise NotSupported(f"simulated GPU {index} has MIG disabled")

    def watch_xid(self, index: int) -> None:
        self._watched.add(index)

    def poll_xid(self) -> tuple[tuple[int, int], ...]:
        events: list[tuple[int, int]] = []
        for index, state in enumerate(self._state):
            if state.pending_xids and index in self._watched:
                events.extend((index, code) for code in state.pending_xids)
            state.pending_xids = ()
        return tuple(events)

    def inject_xid(self, index: int, code: int) -> None:
        """Queue an XID event for the next poll (for the demo and tests)."""
        state = self._state[index]
        state.pending_xids = (*state.pending_xids, code)
