"""RSS of the engine collector through hostile /metrics pages, and SSE splitting work (issue 9,
findings 6 and 7).

A model server in a child process (so its own memory does not count) serves a current vLLM page
(agent/sim/vllm_metrics.py, 2 models x 2 engine cores) and, on request, hostile ones. The real
EngineCollector scrapes it over HTTP with a hand-driven clock 5 s per scrape (1m and 5m windows):

  baseline   70 good scrapes (a full 5 m SLI window), then RSS
  hostile    10 scrapes of each hostile page, RSS peak (VmHWM, reset per phase) and after each phase
  after      70 good scrapes (the windows move past the hostile pages), then RSS

Hostile pages: a 100 MiB endless body; one 19.5 MB line; 7 MiB of distinct unknown families;
70,000 samples of a read family; 300 (model, engine) pairs; 250 new model names every scrape
(under the cap, so they are read and remembered for the window); NaN / Inf / negative counters.
Target: RSS after within 20 MiB of the baseline.

SSE: CPU to split an event without end of 8 and 64 MiB fed in 64 KiB chunks (limit raised above
it, so the whole event is scanned): the ratio is ~8 when splitting is linear (it was quadratic:
~64). Then a 60 MiB endless event under the default 1 MiB limit, passed through.

Run: .venv/bin/python -m benchmarks.bench_hostile_pages
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from agent.capture.sse import SseSplitter
from agent.collectors.engine.collector import EngineCollector
from agent.collectors.engine.windows import parse_windows
from agent.errors import EngineScrapeError
from tests.support.clock import FakeClock
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parent.parent

SERVER = r'''
import asyncio, random, sys
from aiohttp import web
from agent.sim.vllm_metrics import FinishedRequest, VllmMetrics

server = VllmMetrics(("m-a", "m-b"), ("0", "1"))
state = {"mode": "good", "n": 0}

def good():
    for model in server.models:
        for engine in server.engines:
            server.record(FinishedRequest(model), engine=engine)
            server.set_load(model, running=3, waiting=1, kv_cache_usage=0.5, engine=engine)
    return server.render()

def hostile(mode):
    n = state["n"] = state["n"] + 1
    base = good()
    if mode == "one_line":
        return base + "# HELP vllm:x " + "a" * 19_500_000 + "\n"
    if mode == "unknown":
        return base + "".join(f"# TYPE vllm:unknown_family_{n}_{i} gauge\nvllm:unknown_family_{n}_{i} 1\n"
                              for i in range(90_000))
    if mode == "samples":
        return base + "# TYPE vllm:time_to_first_token_seconds histogram\n" + "".join(
            f'vllm:time_to_first_token_seconds_bucket{{model_name="m-a",engine="0",le="{i}"}} {i}\n'
            for i in range(70_000))
    if mode == "models":
        return base + "# TYPE vllm:num_requests_running gauge\n" + "".join(
            f'vllm:num_requests_running{{model_name="x{i}",engine="0"}} 1\n' for i in range(300))
    if mode == "new_models":
        return base.replace('model_name="m-a"', f'model_name="m-{n}-{random.random()}"') + "".join(
            f'vllm:prompt_tokens_total{{model_name="r{n}-{i}",engine="0"}} {n}\n' for i in range(248))
    if mode == "nan":
        return base + 'vllm:prompt_tokens_total{model_name="m-a",engine="0"} NaN\n' \
            'vllm:num_requests_running{model_name="m-a",engine="9"} -Inf\n' \
            'vllm:generation_tokens_total{model_name="m-b",engine="9"} -5\n'
    raise ValueError(mode)

async def metrics(request):
    mode = state["mode"]
    if mode == "endless":
        response = web.StreamResponse()
        await response.prepare(request)
        line = b"# HELP vllm:x " + b"a" * 65_000 + b"\n"
        try:
            for _ in range(1600):  # 100 MiB
                await response.write(line)
        except (ConnectionError, asyncio.CancelledError):
            pass
        return response
    return web.Response(text=good() if mode == "good" else hostile(mode))

async def set_mode(request):
    state["mode"] = request.match_info["mode"]
    return web.Response(text="ok")

app = web.Application()
app.router.add_get("/metrics", metrics)
app.router.add_get("/mode/{mode}", set_mode)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
'''

HOSTILE = ("endless", "one_line", "unknown", "samples", "models", "new_models", "nan")


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _reset_peak() -> None:
    with contextlib.suppress(OSError):  # not every kernel lets a process reset its peak
        Path("/proc/self/clear_refs").write_text("5")


def _mib(n: int) -> str:
    return f"{n / (1 << 20):7.1f} MiB"


async def _pages(port: int) -> int:
    url = f"http://127.0.0.1:{port}"
    clock = FakeClock()
    collector = EngineCollector(url + "/metrics", host="bench", interval_s=5.0, timeout_s=4.0,
                                windows=parse_windows(("1m", "5m"), 5.0), clock=clock)
    control = aiohttp.ClientSession()

    async def scrape(times: int) -> tuple[int, int]:
        ok = failed = 0
        for _ in range(times):
            try:
                await collector.collect()
                ok += 1
            except EngineScrapeError:
                failed += 1
            clock.advance(5.0)
        return ok, failed

    async def mode(name: str) -> None:
        async with control.get(f"{url}/mode/{name}") as resp:
            assert resp.status == 200

    try:
        for _ in range(100):
            try:
                await mode("good")
                break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        await scrape(70)
        gc.collect()
        baseline = _status("VmRSS")
        print(f"baseline after 70 good scrapes: RSS {_mib(baseline)}")
        print(f"{'page':<12} {'ok':>3} {'gap':>3} {'peak RSS':>11} {'RSS after':>11} {'CPU/scrape':>11}")
        for name in HOSTILE:
            await mode(name)
            _reset_peak()
            cpu = time.process_time()
            ok, failed = await scrape(10)
            cpu = (time.process_time() - cpu) / 10
            gc.collect()
            print(f"{name:<12} {ok:>3} {failed:>3} {_mib(_status('VmHWM')):>11} {_mib(_status('VmRSS')):>11} "
                  f"{cpu * 1000:>8.0f} ms")
        await mode("good")
        await scrape(70)
        gc.collect()
        after = _status("VmRSS")
        delta = after - baseline
        print(f"after 70 good scrapes: RSS {_mib(after)}, {delta / (1 << 20):+.1f} MiB against the baseline "
              f"(target: within 20 MiB) -> {'OK' if abs(delta) <= 20 << 20 else 'OVER'}")
        return 0 if abs(delta) <= 20 << 20 else 1
    finally:
        await control.close()
        await collector.close()


def _split_cpu(size: int, limit: int) -> tuple[float, bool]:
    chunk = b"x" * (64 * 1024)
    splitter = SseSplitter(max_event_bytes=limit)
    splitter.feed(b"data: ")
    started = time.process_time()
    for _ in range(size // len(chunk)):
        if splitter.overflowed:
            continue  # the proxy writes the chunk on as is
        splitter.feed(chunk)
    return time.process_time() - started, splitter.overflowed


def _sse() -> None:
    small, _ = _split_cpu(8 << 20, 1 << 30)
    large, _ = _split_cpu(64 << 20, 1 << 30)
    print(f"SSE event without end, limit raised: 8 MiB {small * 1000:.0f} ms CPU, 64 MiB {large * 1000:.0f} ms CPU, "
          f"ratio {large / small:.1f} (linear: ~8; quadratic: ~64)")
    cpu, overflowed = _split_cpu(60 << 20, 1 << 20)
    print(f"SSE 60 MiB event without end, default 1 MiB limit: {cpu * 1000:.0f} ms CPU, passed through "
          f"unparsed: {overflowed}")


def main() -> int:
    port = free_port()
    child = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], cwd=ROOT)
    try:
        code = asyncio.run(_pages(port))
    finally:
        child.terminate()
        child.wait(10)
    _sse()
    return code


if __name__ == "__main__":
    sys.exit(main())
