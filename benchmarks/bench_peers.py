"""Benchmark: campwatch against its peers, LiteLLM's proxy and nvitop-exporter, in the same run on loopback.

    .venv/bin/python -m benchmarks.bench_peers            # about 13 minutes (the first run also installs the peers)
    .venv/bin/python -m benchmarks.bench_peers --quick    # about 4 minutes, noisier

The peers live in their own virtual environment, .venv-peers, made once by this benchmark with pinned
versions (PEER_PINS); when it cannot be made (no package index) the benchmark prints "peers skipped:
<why>" and exits 0, so `make bench` goes on.

1. Proxy. One simulated OpenAI-compatible model server (agent/sim/model_server.py, a chunk every 5 ms)
   on 127.0.0.1, and in front of it, each in its own process: the bare aiohttp pass-through (the floor,
   benchmarks.bench_proxy's), `campwatch run` with only the proxy (records go to its SQLite store,
   flushed each second), and the LiteLLM proxy (one `openai/<model>` entry whose api_base is the
   simulator; no database, no callbacks, telemetry off, LITELLM_LOG=ERROR). One client sends chat
   completions at a fixed rate (open loop; 50 and 200 requests/s, a bounded count), non-streamed and
   streamed, to each variant and directly, in rotating order, 3 repetitions. Figures: added latency
   p50/p99 over direct (streamed: added time to first token), the proxy process tree's CPU seconds per
   request (/proc/<pid>/stat), and per stream the tokens/s from request to [DONE].
2. GPU collector. nvitop-exporter and `campwatch run` with only the GPU collector (SQLite store,
   /metrics served) against the fake libnvidia-ml.so.1 playing 8 H100s (tests/fakenvml, loaded through
   LD_LIBRARY_PATH), both at a 1 s interval, side by side for the same window, a Prometheus scrape of
   each every 15 s, 3 repetitions: CPU seconds per collection cycle and the highest RSS.

Every figure is printed as campwatch over the peer, per repetition, then min/median over the three.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[1]
PEERS_VENV = Path(os.environ.get("CAMPWATCH_PEERS_VENV", ROOT / ".venv-peers"))
"""Where the peers are installed (CAMPWATCH_PEERS_VENV moves it, e.g. to try a machine without an index)."""
PEER_PINS = ("litellm[proxy]==1.106.12", "nvitop==1.7.2", "nvitop-exporter==1.7.2")
"""Verified to install together on Python 3.11 (litellm 1.108+ pins a litellm-proxy-extras the index lacks)."""
STAMP = PEERS_VENV / ".installed-stamp"
PY = sys.executable
CAMPWATCH = str(Path(PY).with_name("campwatch"))
MODEL = "bench/model"
ITL_S = 0.005
MAX_TOKENS = 16
RATES = (50.0, 200.0)
GPU_INTERVAL_S = 1.0
SCRAPE_EVERY_S = 15.0
API_KEY = "sk-" + secrets.token_hex(32)
"""LiteLLM's master key (it refuses to start without one): every variant gets it in Authorization."""


# --- the peers' virtual environment -------------------------------------------------------------------

def ensure_peers_venv() -> str | None:
    """Make .venv-peers with PEER_PINS once; None when ready, else why it could not be made."""
    wanted = "\n".join(PEER_PINS) + "\n"
    tools = [PEERS_VENV / "bin" / name for name in ("litellm", "nvitop-exporter")]
    if STAMP.exists() and STAMP.read_text() == wanted and all(tool.exists() for tool in tools):
        print(f"peers: {PEERS_VENV.name} ready ({', '.join(PEER_PINS)})", flush=True)
        return None
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        print(f"peers: making {PEERS_VENV.name}", flush=True)
        made = subprocess.run([PY, "-m", "venv", str(PEERS_VENV)], capture_output=True, text=True)
        if made.returncode:
            return f"python -m venv {PEERS_VENV.name} failed: {made.stderr.strip().splitlines()[-1:]}"
    print(f"peers: pip install {' '.join(PEER_PINS)} (about 300 MB, a few minutes)", flush=True)
    proc = subprocess.Popen([str(python), "-m", "pip", "install", "--disable-pip-version-check",
                             "--progress-bar", "off", *PEER_PINS],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    tail: list[str] = []
    collected = 0
    for line in proc.stdout:
        line = line.rstrip()
        if line.startswith("Collecting "):
            collected += 1
            if collected % 20 == 0:
                print(f"peers:   {collected} packages resolved ({line.split()[1]})", flush=True)
        elif line.startswith(("Installing collected", "Successfully installed")):
            print(f"peers:   {line[:100]}{'...' if len(line) > 100 else ''}", flush=True)
        if line and not line.startswith("WARNING: Location"):
            tail = [*tail[-9:], line]
    if proc.wait():
        errors = [line for line in tail if line.startswith("ERROR")] or tail[-1:]
        return f"pip could not install {', '.join(PEER_PINS)}: {errors[-1] if errors else 'no output'}"
    STAMP.write_text(wanted)
    return None


# --- processes ----------------------------------------------------------------------------------------

def _descendants(pid: int) -> list[int]:
    """pid and every process below it (LiteLLM and campwatch may start helpers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_cpu_seconds(pid: int) -> float:
    total = 0
    for one in _descendants(pid):
        with suppress(OSError, IndexError):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def tree_rss_mib(pid: int) -> float:
    total = 0
    for one in _descendants(pid):
        with suppress(OSError):
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def cpu(self) -> float:
        return tree_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _wait_http(proc: Proc, path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.proc.returncode}; its log: "
                               f"{proc.log.read_text(errors='replace')[-1500:]}")
        try:
            with urllib.request.urlopen(proc.url + path, timeout=2) as answer:
                answer.read()
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{proc.name} did not answer {path} within {timeout_s:.0f} s")


def _start(name: str, argv: Sequence[str], port: int, ready_path: str, directory: Path,
           env: dict[str, str] | None = None, timeout_s: float = 90.0, cwd: Path | None = None) -> Proc:
    log = directory / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, cwd=cwd or directory,
                                 env=env or dict(os.environ), stdin=subprocess.DEVNULL)
    proc = Proc(name, popen, f"http://127.0.0.1:{port}", log)
    try:
        _wait_http(proc, ready_path, timeout_s)
    except BaseException:
        proc.stop()
        raise
    return proc


def _litellm_config(directory: Path, upstream: str) -> Path:
    path = directory / "litellm.yaml"
    path.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {upstream}/v1\n"
        "      api_key: sk-bench\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  callbacks: []\n"
        "  success_callback: []\n"
        "  failure_callback: []\n"
        "  set_verbose: false\n"
        "  turn_off_message_logging: true\n"
        "general_settings:\n"
        "  disable_spend_logs: true\n"
        "  disable_error_logs: true\n"
        "  disable_reset_budget: true\n"
        "  disable_prisma_schema_update: true\n"
        "  background_health_checks: false\n")
    return path


def _peer_env(**extra: str) -> dict[str, str]:
    """The environment for the peers: no campwatch venv on PATH, no database, nothing fetched."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("VIRTUAL_ENV", "PYTHONPATH", "DATABASE_URL")}
    env["PATH"] = f"{PEERS_VENV / 'bin'}:{env.get('PATH', '')}"
    env |= {"LITELLM_MASTER_KEY": API_KEY, "LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_MODE": "PRODUCTION",
            "LITELLM_TELEMETRY": "False", "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True", "NO_DOCS": "True",
            "DISABLE_ADMIN_UI": "True", "HF_HUB_OFFLINE": "1", **extra}
    return env


# --- the client ---------------------------------------------------------------------------------------

@dataclass
class RunResult:
    latencies: list[float] = field(default_factory=list)
    """Non-streamed: request to full answer. Streamed: request to first token."""
    token_rates: list[float] = field(default_factory=list)
    """Streamed: MAX_TOKENS over request to [DONE], per stream."""
    decode_rates: list[float] = field(default_factory=list)
    """Streamed: MAX_TOKENS over first byte to [DONE], per stream (without the wait for the first token)."""
    events: list[int] = field(default_factory=list)
    errors: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _body(stream: bool, i: int) -> bytes:
    body: dict[str, Any] = {"model": MODEL, "max_tokens": MAX_TOKENS,
                            "messages": [{"role": "user", "content": f"request {i}: " + "hello " * 20}]}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


async def client_run(session: aiohttp.ClientSession, url: str, n: int, rate: float, stream: bool) -> RunResult:
    result = RunResult()
    start = time.perf_counter() + 0.05
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}

    async def one(i: int) -> None:
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        t0 = time.perf_counter()
        try:
            async with session.post(url + "/v1/chat/completions", data=_body(stream, i), headers=headers) as resp:
                if resp.status != 200:
                    await resp.read()
                    result.errors += 1
                    return
                if not stream:
                    await resp.read()
                    result.latencies.append(time.perf_counter() - t0)
                    return
                first = 0.0
                events = 0
                async for data in resp.content.iter_any():
                    if not first:
                        first = time.perf_counter()
                    events += data.count(b"data: ")
                done = time.perf_counter()
        except (TimeoutError, aiohttp.ClientError):
            result.errors += 1
            return
        result.latencies.append(first - t0)
        result.token_rates.append(MAX_TOKENS / (done - t0))
        result.decode_rates.append(MAX_TOKENS / max(done - first, 1e-6))
        result.events.append(events)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    result.wall_s = time.perf_counter() - began
    return result


async def settle(proc: Proc, limit_s: float = 30.0) -> None:
    """Wait until the process tree is quiet (< 5 % of a core over 0.5 s): work a proxy leaves behind after
    answering (logging tasks, a backlog) is charged to it and does not land on the next variant's run."""
    deadline = time.monotonic() + limit_s
    before = proc.cpu()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = proc.cpu()
        if now - before < 0.025:
            return
        before = now


# --- part 1: the proxies --------------------------------------------------------------------------------

async def _upstream_main(port: int) -> None:
    from agent.sim.model_server import SimServerConfig, SimulatedModelServer, start_server

    server = SimulatedModelServer(SimServerConfig(model=MODEL, itl_seconds=ITL_S, tokens_per_chunk=1,
                                                  max_num_seqs=100_000, prefill_tokens_per_s=1e7, refusal_rate=0.0))
    await start_server(server, port=port)
    await asyncio.Event().wait()


def start_proxies(directory: Path) -> dict[str, Proc]:
    up_port, cw_port, cw_metrics, ll_port = (free_port() for _ in range(4))
    upstream = _start("direct", [PY, "-m", "benchmarks.bench_peers", "--role", "upstream", "--port", str(up_port)],
                      up_port, "/health", directory, cwd=ROOT)
    procs = {"direct": upstream}
    try:
        bare_log = directory / "bare.log"
        with bare_log.open("wb") as err:
            bare = subprocess.Popen([PY, "-m", "benchmarks.bench_proxy", "--role", "bare", "--upstream", upstream.url],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, cwd=ROOT)
        assert bare.stdout is not None
        ready = bare.stdout.readline().split()
        if not ready or ready[0] != b"READY":
            bare.kill()
            raise RuntimeError(f"the bare pass-through did not start: {bare_log.read_text()[-800:]}")
        procs["bare"] = Proc("bare", bare, f"http://127.0.0.1:{int(ready[1])}", bare_log)
        procs["campwatch"] = _start(
            "campwatch", [CAMPWATCH, "run", "--no-gpu", "--db", f"sqlite:///{directory}/proxy.db",
                          "--proxy-listen", f"127.0.0.1:{cw_port}", "--proxy-upstream", upstream.url,
                          "--metrics-port", str(cw_metrics), "--host", "bench", "--log-level", "WARNING"],
            cw_port, "/v1/models", directory)
        config = _litellm_config(directory, upstream.url)
        procs["litellm"] = _start(
            "litellm", [str(PEERS_VENV / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1",
                        "--port", str(ll_port), "--num_workers", "1", "--telemetry", "False"],
            ll_port, "/health/liveliness", directory, env=_peer_env(), timeout_s=180.0)
    except BaseException:
        stop_all(procs)
        raise
    return procs


def stop_all(procs: dict[str, Proc]) -> None:
    for proc in reversed(list(procs.values())):
        if proc.name == "bare" and proc.proc.stdin is not None:
            with suppress(OSError):
                proc.proc.stdin.close()
        proc.stop()


VARIANTS = ("direct", "bare", "campwatch", "litellm")


async def proxy_part(procs: dict[str, Proc], seconds: float, reps: int,
                     rates: Sequence[float] = RATES) -> list[dict[str, Any]]:
    """One row per repetition, rate and mode (plain/stream), with every variant's figures in it."""
    rows: list[dict[str, Any]] = []
    timeout = aiohttp.ClientTimeout(total=120)  # LiteLLM's queue, once saturated, grows long
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        for name in VARIANTS:  # warm-up: connections, code paths, LiteLLM's first-request setup
            for stream in (False, True):
                await client_run(session, procs[name].url, 100, 50.0, stream)
        turn = 0
        for rep in range(reps):
            for rate in rates:
                n = max(int(rate * seconds), 100)  # p99 of at least 100 requests
                for stream in (False, True):
                    results: dict[str, RunResult] = {}
                    order = list(VARIANTS[turn % 4:] + VARIANTS[:turn % 4])
                    turn += 1
                    for name in order:
                        proc = procs[name]
                        cpu0 = proc.cpu()
                        got = await asyncio.wait_for(client_run(session, proc.url, n, rate, stream),
                                                     timeout=seconds + 120)
                        await settle(proc)
                        got.cpu_s = proc.cpu() - cpu0
                        results[name] = got
                    rows.append(_proxy_row(rep, rate, stream, n, results))
                    _print_proxy_row(rows[-1])
    return rows


def _proxy_row(rep: int, rate: float, stream: bool, n: int, results: dict[str, RunResult]) -> dict[str, Any]:
    row: dict[str, Any] = {"rep": rep + 1, "rate": rate, "mode": "stream" if stream else "plain", "n": n}
    direct = results["direct"]
    d50, d99 = _pct(direct.latencies, 0.5), _pct(direct.latencies, 0.99)
    for name, got in results.items():
        entry: dict[str, Any] = {"errors": got.errors, "ok": len(got.latencies),
                                 "completed_per_s": len(got.latencies) / got.wall_s}
        if got.latencies:
            p50, p99 = _pct(got.latencies, 0.5), _pct(got.latencies, 0.99)
            entry |= {"p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3,
                      "added_p50_ms": (p50 - d50) * 1e3, "added_p99_ms": (p99 - d99) * 1e3}
        if name != "direct":
            entry["cpu_ms_per_request"] = got.cpu_s / n * 1e3
        if stream and got.token_rates:
            entry["tokens_per_s"] = statistics.median(got.token_rates)
            entry["decode_tokens_per_s"] = statistics.median(got.decode_rates)
            entry["events_median"] = statistics.median(got.events)
        row[name] = entry
    return row


def _print_proxy_row(row: dict[str, Any]) -> None:
    what = "added TTFT" if row["mode"] == "stream" else "added lat."
    print(f"\nrep {row['rep']}: {row['mode']} chat at {row['rate']:.0f} req/s, {row['n']} requests each "
          f"(load avg {os.getloadavg()[0]:.2f})")
    print(f"   {'':10} {'p50 ms':>8} {'p99 ms':>8} {what + ' p50':>15} {'p99':>8} {'CPU ms/req':>10} "
          f"{'tok/s/stream':>12} {'decode tok/s':>12} {'done/s':>7} {'errors':>6}")
    for name in VARIANTS:
        e = row[name]
        print(f"   {name:10} {e.get('p50_ms', float('nan')):8.2f} {e.get('p99_ms', float('nan')):8.2f} "
              f"{e.get('added_p50_ms', float('nan')):15.3f} {e.get('added_p99_ms', float('nan')):8.3f} "
              f"{e.get('cpu_ms_per_request', float('nan')):10.3f} {e.get('tokens_per_s', float('nan')):12.1f} "
              f"{e.get('decode_tokens_per_s', float('nan')):12.1f} {e['completed_per_s']:7.1f} {e['errors']:6d}")


# --- part 2: the GPU collectors ---------------------------------------------------------------------------

def _gpu_env(library_dir: Path, scenario: Path, base: dict[str, str]) -> dict[str, str]:
    return base | {"LD_LIBRARY_PATH": f"{library_dir}:{base.get('LD_LIBRARY_PATH', '')}".rstrip(":"),
                   "FAKENVML_SCENARIO": str(scenario)}


def start_collectors(directory: Path, library_dir: Path, scenario: Path) -> dict[str, Proc]:
    cw_metrics, nv_port = free_port(), free_port()
    procs: dict[str, Proc] = {}
    try:
        procs["campwatch"] = _start(
            "campwatch-gpu", [CAMPWATCH, "run", "--db", f"sqlite:///{directory}/gpu.db", "--metrics-port",
                              str(cw_metrics), "--gpu-interval", str(GPU_INTERVAL_S), "--host", "bench",
                              "--log-level", "WARNING"],
            cw_metrics, "/metrics", directory, env=_gpu_env(library_dir, scenario, dict(os.environ)))
        procs["nvitop-exporter"] = _start(
            "nvitop-exporter", [str(PEERS_VENV / "bin" / "nvitop-exporter"), "--bind-address", "127.0.0.1",
                                "--port", str(nv_port), "--interval", str(GPU_INTERVAL_S)],
            nv_port, "/metrics", directory, env=_gpu_env(library_dir, scenario, _peer_env()))
    except BaseException:
        stop_all(procs)
        raise
    return procs


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
        return str(answer.read().decode())


def check_gpus_seen(procs: dict[str, Proc]) -> dict[str, int]:
    """How many GPUs each collector exports (both must see the scenario's 8)."""
    text = _scrape(procs["campwatch"].url)
    seen = {"campwatch": sum(1 for line in text.splitlines() if line.startswith("campwatch_gpu_up{"))}
    text = _scrape(procs["nvitop-exporter"].url)
    seen["nvitop-exporter"] = sum(1 for line in text.splitlines() if re.match(r"gpu_utilization(_\w+)?\{", line))
    return seen


def gpu_part(directory: Path, seconds: float, reps: int) -> list[dict[str, Any]]:
    from tests.support.fakenvml import SCENARIOS, build_fake_library

    library_dir = build_fake_library().parent
    scenario = SCENARIOS / "h100_8gpu.scn"
    rows: list[dict[str, Any]] = []
    for rep in range(reps):
        procs = start_collectors(directory, library_dir, scenario)
        try:
            time.sleep(5.0)  # warm-up: the first cycles find the unsupported fields
            seen = check_gpus_seen(procs)
            cpu0 = {name: proc.cpu() for name, proc in procs.items()}
            rss = dict.fromkeys(procs, 0.0)
            start = time.monotonic()
            next_scrape = start + SCRAPE_EVERY_S
            while (now := time.monotonic()) - start < seconds:
                for name, proc in procs.items():
                    if proc.proc.poll() is not None:
                        raise RuntimeError(f"{name} exited with {proc.proc.returncode}: "
                                           f"{proc.log.read_text(errors='replace')[-1500:]}")
                    rss[name] = max(rss[name], tree_rss_mib(proc.proc.pid))
                if now >= next_scrape:
                    for proc in procs.values():
                        _scrape(proc.url)
                    next_scrape += SCRAPE_EVERY_S
                time.sleep(1.0)
            elapsed = time.monotonic() - start
            cycles = elapsed / GPU_INTERVAL_S
            row: dict[str, Any] = {"rep": rep + 1, "seconds": elapsed, "gpus_seen": seen}
            for name, proc in procs.items():
                cpu = proc.cpu() - cpu0[name]
                row[name] = {"cpu_ms_per_cycle": cpu / cycles * 1e3, "core_share": cpu / elapsed, "rss_mib": rss[name]}
            rows.append(row)
        finally:
            stop_all(procs)
        c, n = row["campwatch"], row["nvitop-exporter"]
        print(f"rep {rep + 1}: {elapsed:.0f} s, GPUs seen {seen} (load avg {os.getloadavg()[0]:.2f})\n"
              f"   campwatch run (GPU only): {c['cpu_ms_per_cycle']:.2f} ms CPU/cycle, {c['rss_mib']:.1f} MiB\n"
              f"   nvitop-exporter:          {n['cpu_ms_per_cycle']:.2f} ms CPU/cycle, {n['rss_mib']:.1f} MiB\n"
              f"   ratio: CPU {c['cpu_ms_per_cycle'] / n['cpu_ms_per_cycle']:.2f}x, "
              f"RSS {c['rss_mib'] / n['rss_mib']:.2f}x",
              flush=True)
    return rows


NVITOP_TRACE = """
import json, sys
import pynvml
seen, missing = set(), set()
trace_path = sys.argv[1]
original = pynvml._nvmlGetFunctionPointer
def traced(name):
    if name in seen:
        return original(name)
    seen.add(name)
    try:
        return original(name)
    except pynvml.NVMLError:
        missing.add(name)
        raise
    finally:
        with open(trace_path, "w") as out:
            json.dump({"used": sorted(seen), "missing": sorted(missing)}, out)
pynvml._nvmlGetFunctionPointer = traced
from nvitop_exporter.cli import main
sys.argv = ["nvitop-exporter", *sys.argv[2:]]
sys.exit(main())
"""


def nvitop_nvml_calls(directory: Path) -> dict[str, list[str]]:
    """The NVML functions nvitop-exporter looks up ("used") and those the fake does not export ("missing"),
    from a 4 s run with pynvml's function lookup traced."""
    from tests.support.fakenvml import SCENARIOS, build_fake_library

    out = directory / "nvitop-missing.json"
    port = free_port()
    proc = _start("nvitop-trace", [str(PEERS_VENV / "bin" / "python"), "-c", NVITOP_TRACE, str(out),
                                   "--bind-address", "127.0.0.1", "--port", str(port), "--interval", "1"],
                  port, "/metrics", directory,
                  env=_gpu_env(build_fake_library().parent, SCENARIOS / "h100_8gpu.scn", _peer_env()))
    try:
        time.sleep(4.0)
        _scrape(proc.url)
    finally:
        proc.stop()
    found: dict[str, list[str]] = json.loads(out.read_text()) if out.exists() else {"used": [], "missing": []}
    return found


# --- the summary ----------------------------------------------------------------------------------------

def _ratios(values: list[float]) -> str:
    if not values:
        return "-"
    return f"min {min(values):.3g}x  median {statistics.median(values):.3g}x"


def summary(proxy_rows: list[dict[str, Any]], gpu_rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    lines: list[tuple[str, str, str]] = []
    for rate in sorted({row["rate"] for row in proxy_rows}):
        for mode in ("plain", "stream"):
            rows = [r for r in proxy_rows if r["rate"] == rate and r["mode"] == mode]
            if not rows:
                continue
            label = f"{mode} {rate:.0f}/s"
            lat = "added TTFT" if mode == "stream" else "added latency"
            for key, what in (("added_p50_ms", f"{lat} p50"), ("added_p99_ms", f"{lat} p99"),
                              ("cpu_ms_per_request", "CPU per request"), ("tokens_per_s", "tokens/s per stream"),
                              ("decode_tokens_per_s", "decode tokens/s per stream"),
                              ("completed_per_s", "requests completed/s")):
                if key not in rows[0]["campwatch"]:
                    continue
                cw = [r["campwatch"][key] for r in rows]
                ll = [r["litellm"][key] for r in rows]
                bare = [r["bare"][key] for r in rows]
                figures = (f"campwatch {statistics.median(cw):.3f} / LiteLLM {statistics.median(ll):.3f} "
                           f"/ bare {statistics.median(bare):.3f}")
                lines.append((f"{label}: {what}", figures, _ratios([c / p for c, p in zip(cw, ll, strict=True)])))
    for key, what in (("cpu_ms_per_cycle", "GPU: CPU ms per cycle"), ("rss_mib", "GPU: RSS MiB")):
        if gpu_rows:
            cw = [r["campwatch"][key] for r in gpu_rows]
            nv = [r["nvitop-exporter"][key] for r in gpu_rows]
            figures = f"campwatch {statistics.median(cw):.2f} / nvitop-exporter {statistics.median(nv):.2f}"
            lines.append((what, figures, _ratios([c / p for c, p in zip(cw, nv, strict=True)])))
    return lines


def _print_summary(lines: list[tuple[str, str, str]]) -> None:
    print("\nSummary: campwatch over its peer (LiteLLM for the proxy, nvitop-exporter for GPUs), per repetition;"
          "\nfigures are medians (ms, ms/req, tokens/s, MiB). Below 1.00x is better for campwatch except tokens/s.")
    width = max(len(what) for what, _, _ in lines) if lines else 10
    for what, figures, ratios in lines:
        print(f"  {what:<{width}}  {ratios:<32}  {figures}")


@contextmanager
def _workdir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["upstream"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="shorter runs: about 4 minutes")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--only", choices=["proxy", "gpu"], help="run one part")
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES),
                        help=f"request rates of part 1, per second (default {' '.join(f'{r:g}' for r in RATES)})")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.role == "upstream":
        asyncio.run(_upstream_main(args.port))
        return 0
    started = time.monotonic()
    why = ensure_peers_venv()
    if why is not None:
        print(f"peers skipped: {why}")
        return 0
    print(f"load average at start {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"on {os.cpu_count()} CPUs (shared machine: the ratios of interleaved runs are what counts)", flush=True)
    proxy_seconds = 2.0 if args.quick else 5.0
    gpu_seconds = 20.0 if args.quick else 60.0
    proxy_rows: list[dict[str, Any]] = []
    gpu_rows: list[dict[str, Any]] = []
    nvml: dict[str, list[str]] = {}
    with _workdir() as directory:
        if args.only in (None, "proxy"):
            print(f"\n== 1. proxy: direct, bare aiohttp, campwatch run (proxy only), LiteLLM "
                  f"({PEER_PINS[0]}); a chunk every {ITL_S * 1e3:.0f} ms, {MAX_TOKENS} tokens", flush=True)
            procs = start_proxies(directory)
            try:
                proxy_rows = asyncio.run(proxy_part(procs, proxy_seconds, args.reps, args.rates))
            finally:
                stop_all(procs)
        if args.only in (None, "gpu"):
            print(f"\n== 2. GPU collector: campwatch run (GPU only) and nvitop-exporter side by side, 8 fake H100s, "
                  f"{GPU_INTERVAL_S:.0f} s interval, {gpu_seconds:.0f} s each", flush=True)
            nvml = nvitop_nvml_calls(directory)
            print(f"nvitop-exporter looked up {len(nvml['used'])} NVML functions; the fake lacks "
                  f"{', '.join(nvml['missing']) or 'none of them'}", flush=True)
            gpu_rows = gpu_part(directory, gpu_seconds, args.reps)
    lines = summary(proxy_rows, gpu_rows)
    _print_summary(lines)
    runtime = time.monotonic() - started
    print(f"\nload average at end {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"runtime {runtime:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"pins": PEER_PINS, "proxy": proxy_rows, "gpu": gpu_rows,
                                         "nvitop_nvml_functions": nvml, "runtime_s": runtime}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
