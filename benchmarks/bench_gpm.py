"""CPU cost of GPM sampling in the GPU cycle: 8 H100s on the fake libnvidia-ml.so.1 (h100_8gpu).

Run: .venv/bin/python -m benchmarks.bench_gpm [--cycles N] [--repeats R]

Three collectors over the same fake, measured in interleaved rounds (the machine is shared, so each
round sees the same load): the bundled fields without the readings this change added (the baseline,
as before), the same plus GPM, and everything (GPM + time throttled per reason + NVLink counters).
Prints CPU time (time.process_time) per GPU per cycle, best of R rounds with the median alongside,
the GPM part (difference to the baseline) against the 0.25 ms per GPU target, and the ratios.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from agent.collectors.gpu.collector import GpuCollector, build_gpu_collector
from agent.collectors.gpu.fields import BUNDLED_FIELDS
from agent.collectors.gpu.sources import DEVICE_READINGS
from agent.config import GpuSettings
from tests.support.clock import FakeClock
from tests.support.fakenvml import FakeNvml

TARGET_MS_PER_GPU = 0.25
NEW_READINGS = ("gpm", "violation", "nvlink")


def _fields_without(directory: Path, name: str, readings: tuple[str, ...]) -> str:
    dropped = {f for r in readings for f in DEVICE_READINGS[r]}
    lines = [("# " + line if line.split(",")[0].strip() in dropped else line)
             for line in BUNDLED_FIELDS.read_text(encoding="utf-8").splitlines()]
    path = directory / f"{name}.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=500, help="8-GPU cycles per round and setup (default 500)")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds; best and median (default 7)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    fake = FakeNvml.install()
    fake.load("h100_8gpu")
    clock = FakeClock(start=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        setups = {
            "before (no GPM, throttle time, NVLink)": _fields_without(Path(tmp), "before", NEW_READINGS),
            "+ GPM": _fields_without(Path(tmp), "gpm", ("violation", "nvlink")),
            "+ GPM + throttle time + NVLink": "",
        }
        collectors: dict[str, GpuCollector] = {
            name: build_gpu_collector(GpuSettings(fields_file=fields, proc_root="/nonexistent"), "bench",
                                      clock=clock, environ={})
            for name, fields in setups.items()
        }
    gpus = len(next(iter(collectors.values())).devices)
    for _ in range(5):  # the first cycles find the unsupported fields
        fake.step(1)
        clock.advance(1.0)
        for collector in collectors.values():
            collector.collect_sync()
    per_gpu_ms: dict[str, list[float]] = {name: [] for name in collectors}
    for _ in range(args.repeats):
        for name, collector in collectors.items():
            start = time.process_time()
            for _ in range(args.cycles):
                clock.advance(1.0)
                collector.collect_sync()
            per_gpu_ms[name].append((time.process_time() - start) / args.cycles / gpus * 1e3)
        fake.step(1)
    sm_active = [p for p in collectors["+ GPM"].collect_sync().points if p.name == "campwatch_gpu_sm_active_ratio"]
    for collector in collectors.values():
        collector._close()
    assert len(sm_active) == gpus, "GPM points missing: the benchmark would measure nothing"

    base_name = next(iter(per_gpu_ms))
    base = min(per_gpu_ms[base_name])
    print(f"{gpus} GPUs (h100_8gpu on the fake NVML), {args.cycles} cycles x {args.repeats} interleaved rounds, "
          f"CPU time (time.process_time)")
    header = f"{'fields':<40}{'ms/GPU/cycle':>14}{'median':>9}{'x before':>10}{'added ms/GPU':>14}{'x target':>10}"
    print(header)
    print("-" * len(header))
    for name, values in per_gpu_ms.items():
        best = min(values)
        added = best - base
        print(f"{name:<40}{best:>14.4f}{statistics.median(values):>9.4f}{best / base:>10.2f}"
              f"{added:>14.4f}{(added / TARGET_MS_PER_GPU if name != base_name else 0.0):>10.2f}")
    print(f"\ntarget: the GPM part <= {TARGET_MS_PER_GPU} ms CPU per GPU per cycle ('x target' below 1.00 meets it),")
    print(f"and the whole cycle within it too (the ms/GPU/cycle column against {TARGET_MS_PER_GPU}).")


if __name__ == "__main__":
    main()
