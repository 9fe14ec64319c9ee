"""CPU cost of one GPU collection cycle, for 1 and 8 GPUs, against the fake libnvidia-ml.so.1.

Run: .venv/bin/python -m benchmarks.bench_gpu [--cycles N] [--repeats R]

Prints CPU time (time.process_time) per cycle and per GPU per cycle, the ratio to the 0.25 ms per GPU
target, and, as the baseline measured in the same run, the bare cost of one pynvml call
(nvmlDeviceGetPowerUsage) against the same fake. Each figure is the best of R repeats (the machine is
shared; the minimum is the least disturbed run) with the median alongside.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agent.collectors.gpu.collector import GpuCollector, build_gpu_collector
from agent.config import GpuSettings
from agent.sim.gpu import SimulatedGpu
from tests.support.clock import FakeClock
from tests.support.fakenvml import SCENARIOS, FakeNvml

TARGET_MS_PER_GPU = 0.25


def _one_gpu_scenario(directory: Path) -> Path:
    lines = (SCENARIOS / "h100_8gpu.scn").read_text().splitlines()
    kept = ["devices = 1" if line.startswith("devices") else line for line in lines
            if not line.startswith(tuple(f"gpu{i}." for i in range(1, 8)))]
    path = directory / "h100_1gpu.scn"
    path.write_text("\n".join(kept) + "\n")
    return path


def _measure(run: Callable[[], object], cycles: int, repeats: int) -> list[float]:
    """CPU seconds per call of `run`, once per repeat."""
    results = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(cycles):
            run()
        results.append((time.process_time() - start) / cycles)
    return results


def bench_nvml(fake: FakeNvml, scenario: Path | str, cycles: int, repeats: int) -> tuple[list[float], float, int]:
    fake.load(scenario)
    clock = FakeClock(start=0.0)  # one scenario step is one second, so energy differences stay plausible
    collector = build_gpu_collector(GpuSettings(proc_root="/nonexistent"), "bench", clock=clock, environ={})
    gpus = len(collector.devices)

    def cycle() -> None:
        fake.step(1)
        clock.advance(1.0)
        collector.collect_sync()

    for _ in range(5):  # the first cycles find the unsupported fields
        cycle()
    fake.reset_calls()
    per_cycle = _measure(cycle, cycles, repeats)
    calls_per_gpu_cycle = fake.calls() / (cycles * repeats) / gpus
    collector._close()
    return per_cycle, calls_per_gpu_cycle, gpus


def bench_sim(gpus: int, cycles: int, repeats: int) -> list[float]:
    clock = FakeClock(start=0.0)  # one scenario step is one second, so energy differences stay plausible
    sim = SimulatedGpu(count=gpus, load=lambda: 0.7, clock=clock)
    collector: GpuCollector = build_gpu_collector(GpuSettings(proc_root="/nonexistent"), "bench", driver=sim,
                                                  clock=clock)

    def cycle() -> None:
        clock.advance(1.0)
        collector.collect_sync()

    for _ in range(5):
        cycle()
    return _measure(cycle, cycles, repeats)


def bench_bare_call(cycles: int, repeats: int) -> list[float]:
    import pynvml

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    get_power = pynvml.nvmlDeviceGetPowerUsage
    results = _measure(lambda: get_power(handle), cycles, repeats)
    pynvml.nvmlShutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=2000, help="collection cycles per repeat (default 2000)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats; the best is reported (default 5)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    fake = FakeNvml.install()
    with tempfile.TemporaryDirectory() as tmp:
        one = _one_gpu_scenario(Path(tmp))
        fake.load(one)
        bare = bench_bare_call(args.cycles * 20, args.repeats)
        rows = [("NVML (fake), 1 GPU", *bench_nvml(fake, one, args.cycles, args.repeats)),
                ("NVML (fake), 8 GPUs", *bench_nvml(fake, "h100_8gpu", args.cycles // 4, args.repeats))]
    sims = [(f"simulated, {n} GPU{'s' if n > 1 else ''}", bench_sim(n, args.cycles // n, args.repeats), n)
            for n in (1, 8)]

    bare_us = min(bare) * 1e6
    print(f"baseline: bare pynvml call (nvmlDeviceGetPowerUsage) = {bare_us:.2f} us CPU "
          f"(median {statistics.median(bare) * 1e6:.2f} us)")
    print(f"target: {TARGET_MS_PER_GPU} ms CPU per GPU per cycle\n")
    header = f"{'driver':<22}{'ms/cycle':>10}{'ms/GPU/cycle':>14}{'med/GPU':>9}{'x target':>10}" \
             f"{'NVML calls/GPU':>16}{'in bare calls':>15}{'8 GPUs @1 Hz':>14}"
    print(header)
    print("-" * len(header))
    for name, per_cycle, calls, gpus in rows:
        best = min(per_cycle) * 1e3
        per_gpu = best / gpus
        print(f"{name:<22}{best:>10.3f}{per_gpu:>14.4f}{statistics.median(per_cycle) * 1e3 / gpus:>9.4f}"
              f"{per_gpu / TARGET_MS_PER_GPU:>10.2f}{calls:>16.1f}{per_gpu * 1e3 / bare_us:>15.0f}"
              f"{per_gpu * 8 / 1e3 * 100:>13.3f}%")
    for name, per_cycle, gpus in sims:
        best = min(per_cycle) * 1e3
        per_gpu = best / gpus
        print(f"{name:<22}{best:>10.3f}{per_gpu:>14.4f}{statistics.median(per_cycle) * 1e3 / gpus:>9.4f}"
              f"{per_gpu / TARGET_MS_PER_GPU:>10.2f}{'-':>16}{per_gpu * 1e3 / bare_us:>15.0f}"
              f"{per_gpu * 8 / 1e3 * 100:>13.3f}%")
    print("\n'x target' below 1.00 meets the target; '8 GPUs @1 Hz' is the share of one core that 8 such GPUs")
    print("polled once a second would cost; 'in bare calls' is the per-GPU cost in units of the baseline call.")


if __name__ == "__main__":
    main()
