"""Benchmark: resident memory and import time of `campwatch run` against a bare Python + aiohttp +
prometheus_client process, measured in the same run.

    .venv/bin/python -m benchmarks.bench_memory             # about 1.5 minutes
    .venv/bin/python -m benchmarks.bench_memory --quick     # about 40 s

`campwatch run` sees 8 GPUs through the fake NVML library (tests/fakenvml, scenario h100_8gpu),
scrapes one simulated vLLM server's /metrics and proxies chat requests to it (a few per second, so
the store writes), with the default settings otherwise (drift enabled, its first check one interval
away: no drift run in progress), on a database already migrated (every start but the first; the
first start on a fresh database, which loads Alembic to migrate, is printed too), and once more with
MALLOC_ARENA_MAX=2 as the docker image sets it. The floors: a bare process serving prometheus_client's
exposition over aiohttp, and the same with the same NVML library loaded and initialised (a GPU
exporter's floor: the fake library's static device tables take about 6 MiB of it). RSS is read from
/proc/<pid>/status (VmRSS) about once a second after a warm-up; the figure is the highest reading.
Import time is the wall time of a fresh interpreter importing the run path (`agent.cli` +
`agent.wiring` + what build_runner loads) against one importing aiohttp and prometheus_client. 3
repetitions, min/median. Target: <= 60 MiB RSS. --by-module first prints the RSS each import group,
the NVML library, build_runner and 10 s of running add, from one process doing what `campwatch run` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[1]

TARGET_MIB = 60.0
PY = sys.executable
CAMPWATCH = str(Path(PY).with_name("campwatch"))

BARE = """
import asyncio, sys
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
async def metrics(request):
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
app = web.Application(); app.router.add_get("/metrics", metrics)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""

BARE_NVML = "import pynvml; pynvml.nvmlInit(); pynvml.nvmlDeviceGetCount()\n" + BARE
"""The floor of a GPU exporter: the same bare process with the same NVML library loaded and initialised."""

IMPORT_RUN_PATH = """
import agent.cli, agent.wiring, agent.runner, agent.capture.proxy, agent.collectors.gpu.collector
import agent.collectors.engine.collector, agent.cost.report, agent.drift.points, agent.drift.worker
"""
IMPORT_BARE = "import asyncio, aiohttp.web, prometheus_client"


STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("more stdlib (ssl, logging, concurrent.futures)", ("asyncio", "ssl", "json", "logging", "concurrent.futures")),
    ("aiohttp (server and client)", ("aiohttp", "aiohttp.web")),
    ("prometheus_client", ("prometheus_client",)),
    ("SQLAlchemy Core (engine, pool, SQL compiler, SQLite dialect)",
     ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.dialects.sqlite")),
    ("pydantic + pydantic_core", ("pydantic",)),
    ("agent.config: the settings models (schemas built at class creation)", ("agent.config",)),
    ("click + agent.cli", ("click", "agent.cli")),
    ("agent.store: schema, writer, spool, maintenance", ("agent.store.writer", "agent.store.maintenance",
                                                          "agent.store.spool", "agent.store.revisions")),
    ("agent.wiring, runner, exporters, telemetry", ("agent.wiring", "agent.runner")),
    ("GPU collector (NVML bindings)", ("agent.collectors.gpu.collector",)),
    ("engine collector (/metrics parser, maps)", ("agent.collectors.engine.collector",)),
    ("capture proxy", ("agent.capture.proxy",)),
    ("cost report (genai-prices code, queries, ledger)", ("agent.cost.report",)),
    ("drift bookkeeping (the check itself runs in a child)", ("agent.drift.points", "agent.drift.worker")),
)
"""The run path's imports in the order `campwatch run` needs them, grouped (--by-module)."""


def _by_module(proxy_port: int, metrics_port: int, engine_port: int, db_url: str, run_s: float) -> None:
    """Runs in the measured process: RSS after each import group, after build_runner, and after
    `run_s` seconds of running (the parent sends proxy traffic meanwhile); one line per stage."""
    import importlib

    own = os.getpid()
    last = _rss_mib(own)
    print(f"STAGE interpreter + the benchmark script's stdlib imports (asyncio, subprocess, urllib) "
          f"{last:.2f} {last:.2f}", flush=True)
    for label, modules in STAGES:
        for name in modules:
            importlib.import_module(name)
        now = _rss_mib(own)
        print(f"STAGE {label} {now - last:.2f} {now:.2f}", flush=True)
        last = now
    import pynvml

    pynvml.nvmlInit()  # build_runner's own init then only counts up: this stage is the library's memory
    now = _rss_mib(own)
    print(f"STAGE NVML library loaded and initialised (the fake library's own device tables) {now - last:.2f} "
          f"{now:.2f}", flush=True)
    last = now
    from agent.config import load_settings
    from agent.wiring import build_runner

    settings = load_settings(None, overrides={
        "store": {"url": db_url}, "engine": {"urls": [f"http://127.0.0.1:{engine_port}/metrics"]},
        "proxy": {"listen": f"127.0.0.1:{proxy_port}", "upstream": f"http://127.0.0.1:{engine_port}"},
        "metrics": {"port": metrics_port}, "host": "bench", "log_level": "WARNING"})

    async def go() -> None:
        nonlocal last
        parts = build_runner(settings)
        now = _rss_mib(own)
        print(f"STAGE build_runner (settings, collectors, engine and pools, proxy) {now - last:.2f} {now:.2f}",
              flush=True)
        last = now
        task = asyncio.create_task(parts.runner.run())
        await asyncio.sleep(run_s)
        now = _rss_mib(own)
        print(f"STAGE running {run_s:.0f} s (first cost report: genai-prices data; caches, buffers, threads) "
              f"{now - last:.2f} {now:.2f}", flush=True)
        parts.runner.stop()
        await task

    asyncio.run(go())


def by_module(engine_port: int, library_dir: Path, scenario: Path, run_s: float) -> list[tuple[str, float, float]]:
    """The stages' RSS added, from one process that imports and runs what `campwatch run` does."""
    proxy_port, metrics_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        url = f"sqlite:///{tmp}/cw.db"
        subprocess.run([CAMPWATCH, "db", "upgrade", "--db", url], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env = dict(os.environ, FAKENVML_SCENARIO=str(scenario), LD_LIBRARY_PATH=str(library_dir), PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([PY, "-m", "benchmarks.bench_memory", "--role", "by-module", "--port", str(engine_port),
                                 "--proxy-port", str(proxy_port), "--metrics-port", str(metrics_port), "--db", url,
                                 "--seconds", str(run_s)], env=env, cwd=tmp, stdout=subprocess.PIPE, text=True)
        stages: list[tuple[str, float, float]] = []
        assert proc.stdout is not None
        try:
            _wait_http(f"http://127.0.0.1:{metrics_port}/metrics", timeout_s=60)
            deadline = time.monotonic() + run_s
            while time.monotonic() < deadline and proc.poll() is None:
                for _ in range(4):
                    _chat(proxy_port)
                time.sleep(0.5)
            for line in proc.stdout:
                if line.startswith("STAGE "):
                    label, added, total = line[6:].rstrip().rsplit(" ", 2)
                    stages.append((label, float(added), float(total)))
        finally:
            proc.wait(timeout=30)
    return stages


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _wait_http(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                answer.read()
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s")


def _upstream(port: int) -> None:
    from agent.sim.model_server import SimServerConfig, SimulatedModelServer, start_server

    async def main() -> None:
        await start_server(SimulatedModelServer(SimServerConfig(tokens_per_chunk=4)), port=port)
        await asyncio.Event().wait()

    asyncio.run(main())


def _chat(proxy_port: int) -> None:
    body = json.dumps({"model": "simulated/llama-3.1-8b-instruct", "max_tokens": 8,
                       "messages": [{"role": "user", "content": "hi there"}]}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{proxy_port}/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()
    except OSError:
        pass  # the figure is memory; a refused request only means less to write


def _watch(proc: subprocess.Popen[bytes], seconds: float, warmup_s: float, proxy_port: int | None) -> float:
    """Highest RSS over `seconds` after `warmup_s`, sending a few proxy requests a second meanwhile."""
    start = time.monotonic()
    peak = 0.0
    while time.monotonic() - start < warmup_s + seconds:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}")
        if proxy_port is not None:
            for _ in range(4):
                _chat(proxy_port)
        if time.monotonic() - start >= warmup_s:
            peak = max(peak, _rss_mib(proc.pid))
        time.sleep(0.5)
    return peak


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def campwatch_rss(engine_port: int, library_dir: Path, scenario: Path, seconds: float, *, migrated: bool,
                  env: dict[str, str] | None = None) -> float:
    """`migrated`: the database is already at head (every start but the first), else a fresh file.
    `env`: more environment for the process (MALLOC_ARENA_MAX)."""
    proxy_port, metrics_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        if migrated:
            subprocess.run([CAMPWATCH, "db", "upgrade", "--db", f"sqlite:///{tmp}/cw.db"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        more = env or {}
        env = dict(os.environ, FAKENVML_SCENARIO=str(scenario), LD_LIBRARY_PATH=str(library_dir),
                   CAMPWATCH_LOG_LEVEL="WARNING", **more)
        proc = subprocess.Popen(
            [CAMPWATCH, "run", "--db", f"sqlite:///{tmp}/cw.db", "--engine-url",
             f"http://127.0.0.1:{engine_port}/metrics", "--proxy-listen", f"127.0.0.1:{proxy_port}",
             "--proxy-upstream", f"http://127.0.0.1:{engine_port}", "--metrics-port", str(metrics_port),
             "--host", "bench"],
            env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_http(f"http://127.0.0.1:{metrics_port}/metrics")
            # /metrics answers before the GPU collector's first tick: give that tick a few seconds
            deadline = time.monotonic() + 10.0
            while True:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as answer:
                    text = answer.read().decode()
                if "campwatch_gpu_up{" in text:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("campwatch run exports no GPU series: the fake NVML did not load")
                time.sleep(0.25)
            return _watch(proc, seconds, warmup_s=8.0, proxy_port=proxy_port)
        finally:
            _stop(proc)


def bare_rss(seconds: float, nvml: tuple[Path, Path] | None = None) -> float:
    """`nvml`: (library folder, scenario) to load the NVML library as campwatch run does."""
    port = free_port()
    env = None
    if nvml is not None:
        env = dict(os.environ, LD_LIBRARY_PATH=str(nvml[0]), FAKENVML_SCENARIO=str(nvml[1]))
    proc = subprocess.Popen([PY, "-c", BARE if nvml is None else BARE_NVML, str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_http(f"http://127.0.0.1:{port}/metrics")
        return _watch(proc, seconds, warmup_s=2.0, proxy_port=None)
    finally:
        _stop(proc)


def import_seconds(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([PY, "-c", code], check=True, cwd=ROOT)
    return time.perf_counter() - start


def _fmt(values: list[float], unit: str) -> str:
    return f"min {min(values):.1f} {unit}, median {statistics.median(values):.1f} {unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter watch windows")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the comparison (0: none)")
    parser.add_argument("--by-module", action="store_true",
                        help="also print the RSS each import group and the running add, from one process")
    parser.add_argument("--role", choices=["upstream", "by-module"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--proxy-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--metrics-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--db", default="", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "upstream":
        _upstream(args.port)
        return
    if args.role == "by-module":
        _by_module(args.proxy_port, args.metrics_port, args.port, args.db, args.seconds)
        return
    from tests.support.fakenvml import SCENARIOS, build_fake_library

    library_dir = build_fake_library().parent
    scenario = SCENARIOS / "h100_8gpu.scn"
    seconds = 6.0 if args.quick else 15.0
    engine_port = free_port()
    upstream = subprocess.Popen([PY, "-m", "benchmarks.bench_memory", "--role", "upstream", "--port", str(engine_port)],
                                cwd=ROOT)
    try:
        _wait_http(f"http://127.0.0.1:{engine_port}/metrics")
        if args.by_module:
            stages = by_module(engine_port, library_dir, scenario, max(seconds, 10.0))
            print("RSS by module (one process importing and running what `campwatch run` does, in its order):")
            print(f"  {'stage':<95} {'added MiB':>9} {'total':>7}")
            for label, added, total in stages:
                print(f"  {label:<95} {added:9.1f} {total:7.1f}")
        rows: list[tuple[float, float, float, float, float, float, float]] = []
        for rep in range(args.reps):
            cw = campwatch_rss(engine_port, library_dir, scenario, seconds, migrated=True)
            arena = campwatch_rss(engine_port, library_dir, scenario, seconds, migrated=True,
                                  env={"MALLOC_ARENA_MAX": "2"})
            fresh = campwatch_rss(engine_port, library_dir, scenario, seconds, migrated=False)
            bare = bare_rss(seconds / 2)
            bare_nvml = bare_rss(seconds / 2, nvml=(library_dir, scenario))
            cw_import = import_seconds(IMPORT_RUN_PATH)
            bare_import = import_seconds(IMPORT_BARE)
            rows.append((cw, bare, cw_import, bare_import, fresh, arena, bare_nvml))
            print(f"rep {rep + 1}: campwatch run {cw:.1f} MiB (MALLOC_ARENA_MAX=2 as in the image {arena:.1f}; "
                  f"first start on a fresh database {fresh:.1f}), bare {bare:.1f} MiB ({cw / bare:.2f}x), "
                  f"bare with the NVML library {bare_nvml:.1f} MiB ({cw / bare_nvml:.2f}x); "
                  f"import {cw_import:.2f} s vs bare {bare_import:.2f} s ({cw_import / bare_import:.2f}x)")
    finally:
        _stop(upstream)
    if not rows:
        return
    cws = [r[0] for r in rows]
    print(f"campwatch run RSS: {_fmt(cws, 'MiB')} (target <= {TARGET_MIB:.0f} MiB: "
          f"{'met' if min(cws) <= TARGET_MIB else 'NOT met'})")
    print(f"campwatch run RSS with MALLOC_ARENA_MAX=2 (the docker image's setting): "
          f"{_fmt([r[5] for r in rows], 'MiB')}")
    print(f"campwatch run RSS, first start on a fresh database: {_fmt([r[4] for r in rows], 'MiB')}")
    print(f"bare aiohttp + prometheus_client RSS: {_fmt([r[1] for r in rows], 'MiB')}")
    print(f"bare with the same NVML library loaded (a GPU exporter's floor): {_fmt([r[6] for r in rows], 'MiB')}")
    print(f"RSS ratio to bare: {_fmt([r[0] / r[1] for r in rows], 'x')}")
    print(f"RSS ratio to bare with the NVML library: {_fmt([r[0] / r[6] for r in rows], 'x')}; campwatch's own "
          f"above that floor: {_fmt([r[0] - r[6] for r in rows], 'MiB')}")
    print(f"import time: campwatch {_fmt([r[2] for r in rows], 's')}, bare {_fmt([r[3] for r in rows], 's')}, "
          f"ratio {_fmt([r[2] / r[3] for r in rows], 'x')}")


if __name__ == "__main__":
    main()
