"""Helpers for the GPU tests: a controllable clock, a runner over the fake NVML, point lookups."""

from __future__ import annotations

from pathlib import Path

from agent.collectors.gpu.collector import GpuCollector, build_gpu_collector
from agent.config import GpuSettings
from agent.samples import Collected, GpuSample, Point
from tests.support.clock import FakeClock
from tests.support.fakenvml import FakeNvml

__all__ = ["FakeClock", "FakeNvml", "GpuRun", "gpu_rows", "has", "points_named", "value"]


class GpuRun:
    """Builds collectors against the fake and steps the fake and the clock together (1 step = 1 s)."""

    def __init__(self, fake: FakeNvml, clock: FakeClock, proc_root: Path, tmp_path: Path) -> None:
        self.fake = fake
        self.clock = clock
        self.proc_root = proc_root
        self.tmp_path = tmp_path
        self.collectors: list[GpuCollector] = []

    def collector(self, scenario: str, *, fields_file: str = "", top_processes: int = 10,
                  interval_s: float = 1.0, devices: tuple[str, ...] = (),
                  environ: dict[str, str] | None = None) -> GpuCollector:
        """`environ` stands for the process environment (default empty: NVIDIA_VISIBLE_DEVICES and
        CUDA_VISIBLE_DEVICES of the machine running the tests never leak in)."""
        if "\n" in scenario or "=" in scenario:
            self.fake.load_text(scenario, self.tmp_path)
        else:
            self.fake.load(scenario)
        settings = GpuSettings(fields_file=fields_file, top_processes=top_processes,
                               proc_root=str(self.proc_root), interval_s=interval_s, devices=devices)
        collector = build_gpu_collector(settings, "node-a", clock=self.clock, environ=environ or {})
        self.collectors.append(collector)
        return collector

    def tick(self, seconds: int = 1) -> None:
        self.fake.step(seconds)
        self.clock.advance(float(seconds))

    def cycles(self, collector: GpuCollector, n: int) -> list[Collected]:
        """Collect at the current step, then n-1 more times one step apart."""
        out = [collector.collect_sync()]
        for _ in range(n - 1):
            self.tick()
            out.append(collector.collect_sync())
        return out

    def close(self) -> None:
        for collector in self.collectors:
            collector._close()


def points_named(collected: Collected, name: str) -> list[Point]:
    return [p for p in collected.points if p.name == name]


def gpu_rows(collected: Collected) -> list[GpuSample]:
    """The collected rows, each checked to be a GPU sample."""
    rows = [row for row in collected.rows if isinstance(row, GpuSample)]
    assert len(rows) == len(collected.rows), f"expected only GPU samples, got {collected.rows}"
    return rows


def value(collected: Collected, name: str, gpu: int = 0, **extra: str) -> float:
    """The one point `name` for GPU `gpu` whose labels include `extra`; fails when absent or ambiguous."""
    found = [
        p.value for p in points_named(collected, name)
        if dict(p.labels).get("gpu") == str(gpu) and all(dict(p.labels).get(k) == v for k, v in extra.items())
    ]
    assert len(found) == 1, f"expected one {name} for gpu {gpu} {extra}, found {found}"
    return found[0]


def has(collected: Collected, name: str, gpu: int = 0) -> bool:
    return any(dict(p.labels).get("gpu") == str(gpu) for p in points_named(collected, name))
