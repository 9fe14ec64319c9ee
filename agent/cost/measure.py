"""GPU time and energy per hour, from GPU samples (pure: plain readings in, hourly figures out).

Rules (docs/cost.md):
- A GPU is held from its first sample to its last: the time between two consecutive samples is
  held (allocation basis: what the bill says), even across a data gap.
- The interval (a, b] between two samples is *observed* when b was read (up, utilization present)
  and the spacing is at most gap_factor x the GPU's typical spacing; otherwise it is a gap.
- Busy time is b's utilization x the observed interval: gaps add allocation, never busy time.
- Energy is the increase of the cumulative joules counter between valid readings, a decrease
  being a reset (the new value counts from zero), attributed to the hour of the later reading.
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.cost.units import HOUR_SECONDS
from agent.counters import increase
from agent.utc import as_utc


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU sample as the cost engine needs it."""

    ts: datetime
    uuid: str
    up: bool
    utilization_ratio: float | None = None
    energy_joules_total: float | None = None
    simulated: bool = False


@dataclass(frozen=True, slots=True)
class GpuHour:
    """What the GPUs of one host did in one hour. Seconds are GPU-seconds unless named wall.

    A measured hour (agent.cost.measures.HourMeasure) and a priced one (agent.cost.pricing.LedgerRow)
    extend it, so these figures are declared, and priced, in one place."""

    hour: datetime
    gpus: int
    held_seconds: float
    """Wall seconds during which at least one GPU was held."""
    allocated_gpu_seconds: float
    observed_gpu_seconds: float
    gpu_gap_seconds: float
    busy_gpu_seconds: float
    energy_joules: float
    simulated: bool


def typical_spacing(times: Sequence[float]) -> float | None:
    """Median spacing of sorted epoch times, or None with fewer than two."""
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    return statistics.median(gaps) if gaps else None


def clip_to_hours(a: float, b: float, start: float, end: float) -> Iterable[tuple[float, float]]:
    """(hour start, overlap seconds) of the interval (a, b] within [start, end), hours as epochs."""
    lo, hi = max(a, start), min(b, end)
    if hi <= lo:
        return
    hour = lo - lo % HOUR_SECONDS
    while hour < hi:
        overlap = min(hi, hour + HOUR_SECONDS) - max(lo, hour)
        if overlap > 0:
            yield hour, overlap
        hour += HOUR_SECONDS


def merge_intervals(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def wall_seconds_by_hour(
    intervals: Iterable[tuple[float, float]], start: float, end: float
) -> dict[float, float]:
    """Seconds per hour covered by the union of the intervals, within [start, end)."""
    out: dict[float, float] = defaultdict(float)
    for a, b in merge_intervals(intervals):
        for hour, overlap in clip_to_hours(a, b, start, end):
            out[hour] += overlap
    return out


@dataclass
class _Acc:
    allocated: float = 0.0
    observed: float = 0.0
    gap: float = 0.0
    busy: float = 0.0
    energy: float = 0.0


def measure_gpus(
    readings: Iterable[GpuReading], start: datetime, end: datetime, gap_factor: float = 3.0
) -> dict[datetime, GpuHour]:
    """Hourly GPU figures for one host within [start, end).

    Pass the readings inside the range plus, for each GPU, the last reading before `start` and the
    first at or after `end`, so intervals crossing the edges are counted exactly once."""
    t0, t1 = as_utc(start).timestamp(), as_utc(end).timestamp()
    by_gpu: dict[str, list[GpuReading]] = defaultdict(list)
    for reading in readings:
        by_gpu[reading.uuid].append(reading)

    per_hour: dict[tuple[float, str], _Acc] = defaultdict(_Acc)
    spans: list[tuple[float, float]] = []
    simulated_hours: set[float] = set()
    for uuid, series in by_gpu.items():
        series.sort(key=lambda r: r.ts)
        times = [as_utc(r.ts).timestamp() for r in series]
        spacing = typical_spacing(times)
        gap_after = float("inf") if spacing is None else gap_factor * spacing
        spans.append((times[0], times[-1]))
        last_energy: float | None = None
        for i, reading in enumerate(series):
            tb = times[i]
            if t0 <= tb < t1 and reading.simulated:
                simulated_hours.add(tb - tb % HOUR_SECONDS)
            if reading.up and reading.energy_joules_total is not None:
                value = reading.energy_joules_total
                if last_energy is not None and t0 <= tb < t1:
                    delta = increase(last_energy, value)
                    hour = tb - tb % HOUR_SECONDS
                    per_hour[(hour, uuid)].energy += delta
                last_energy = value
            if i == 0:
                continue
            ta = times[i - 1]
            util = reading.utilization_ratio
            observed = reading.up and util is not None and tb - ta <= gap_after
            for hour, overlap in clip_to_hours(ta, tb, t0, t1):
                acc = per_hour[(hour, uuid)]
                acc.allocated += overlap
                if observed and util is not None:
                    acc.observed += overlap
                    acc.busy += overlap * min(max(util, 0.0), 1.0)
                else:
                    acc.gap += overlap

    held = wall_seconds_by_hour(spans, t0, t1)
    hours: dict[float, list[_Acc]] = defaultdict(list)
    for (hour, _uuid), acc in per_hour.items():
        hours[hour].append(acc)
    out: dict[datetime, GpuHour] = {}
    for hour in sorted(set(hours) | set(held)):
        accs = hours.get(hour, [])
        when = datetime.fromtimestamp(hour, UTC)
        out[when] = GpuHour(
            hour=when,
            gpus=sum(1 for acc in accs if acc.allocated > 0),
            held_seconds=held.get(hour, 0.0),
            allocated_gpu_seconds=sum(acc.allocated for acc in accs),
            observed_gpu_seconds=sum(acc.observed for acc in accs),
            gpu_gap_seconds=sum(acc.gap for acc in accs),
            busy_gpu_seconds=sum(acc.busy for acc in accs),
            energy_joules=sum(acc.energy for acc in accs),
            simulated=hour in simulated_hours,
        )
    return out

