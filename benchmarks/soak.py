"""`make soak`: the sidecar under sustained traffic, measured from outside.

`campwatch run` runs as a separate process, as in production: 8 GPUs through the fake NVML library
(the real pynvml path), the simulated vLLM server as engine and proxy upstream, and the real Azure
trace replayed through the proxy at --speed times its rate (5.5 requests/s at 1). Every 10 s the
sidecar's CPU time and RSS are read from /proc; at the end the rows written, rows dropped and
collector health are read from its /metrics. The sidecar's RSS growth over the last half of the run is the leak check.

    .venv/bin/python -m benchmarks.soak [--minutes 10] [--speed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from agent.sim.model_server import SimServerConfig, SimulatedModelServer, start_server
from agent.sim.trace import load_trace
from agent.sim.traffic import TrafficPlan, TrafficStats, replay
from tests.integration.sidecar import Sidecar
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[1]

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of a process and its children that were waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / TICK
    rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    return cpu, rss


async def main(minutes: float, speed: float) -> int:
    # 4 tokens per SSE chunk: the driver process (simulated server + load generator on one core) must keep
    # up with the trace, or its own backlog, not the sidecar, would be what the soak measures.
    server = SimulatedModelServer(SimServerConfig(tokens_per_chunk=4))
    runner, port = await start_server(server)
    proxy_port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        sidecar = Sidecar(["--db", f"sqlite:///{tmp}/soak.db", "--engine-url", f"http://127.0.0.1:{port}/metrics",
                           "--proxy-listen", f"127.0.0.1:{proxy_port}", "--proxy-upstream", f"http://127.0.0.1:{port}",
                           "--host", "soak"], env={"CAMPWATCH_COST__INTERVAL_S": "60"})
        await sidecar.start()
        await sidecar.wait_for("campwatch_gpu_up{", timeout=60)
        assert sidecar.proc is not None
        pid = sidecar.proc.pid
        stats = TrafficStats()
        plan = TrafficPlan(base_url=f"http://127.0.0.1:{proxy_port}", model=server.config.model,
                           duration_s=minutes * 60, speed=speed)
        traffic = asyncio.create_task(replay(load_trace(), plan, stats))
        samples: list[tuple[float, float, int]] = []
        started = time.monotonic()
        print(f"soak: {minutes:g} min, trace at x{speed:g}, sidecar pid {pid}")
        print(f"{'t s':>6} {'CPU %':>7} {'RSS MiB':>8} {'sent':>7} {'done':>7} {'failed':>6}")
        while not traffic.done():
            cpu, rss = proc_stats(pid)
            now = time.monotonic() - started
            if samples:
                t0, c0, _ = samples[-1]
                print(f"{now:6.0f} {100 * (cpu - c0) / (now - t0):7.1f} {rss / 2**20:8.1f} "
                      f"{stats.sent:7d} {stats.completed:7d} {stats.failed:6d}", flush=True)
            samples.append((now, cpu, rss))
            await asyncio.sleep(10)
        await traffic
        page = await sidecar.scrape()
        code = await sidecar.stop()
        await runner.cleanup()
    families = {f.name: f for f in text_string_to_metric_families(page)}
    written = {s.labels["table"]: s.value for s in families["campwatch_samples_written"].samples}
    dropped = {s.labels["reason"]: s.value for s in families["campwatch_dropped"].samples} \
        if "campwatch_dropped" in families else {}
    up = {s.labels["collector"]: s.value for s in families["campwatch_collector_up"].samples}
    (t0, c0, r0), (t1, c1, r1) = samples[0], samples[-1]
    half = samples[len(samples) // 2]
    print(f"\nrequests: {stats.sent} sent, {stats.completed} completed, {stats.failed} failed "
          f"({stats.sent / (t1 - t0 or 1):.1f}/s){' ' + str(stats.errors) if stats.errors else ''}")
    print(f"sidecar CPU: {100 * (c1 - c0) / (t1 - t0 or 1):.1f} % of one core on average "
          f"({(c1 - c0) / max(stats.completed, 1) * 1000:.2f} ms per proxied request, GPU and engine included)")
    print(f"sidecar RSS: {r0 / 2**20:.0f} MiB at start, {r1 / 2**20:.0f} MiB at end, "
          f"max {max(s[2] for s in samples) / 2**20:.0f} MiB; growth over the second half "
          f"{(r1 - half[2]) / 2**20:+.1f} MiB")
    print(f"rows written: {written}; dropped: {dropped or 'none'}; collectors up: {up}")
    print(f"exit code on SIGTERM: {code}")
    return 0 if code == 0 and stats.failed == 0 and not dropped else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.minutes, args.speed)))
