"""Benchmark: campwatch's capture proxy against direct calls and a bare aiohttp pass-through proxy,
all measured in the same run on loopback.

    .venv/bin/python -m benchmarks.bench_proxy            # about 1.5 minutes
    .venv/bin/python -m benchmarks.bench_proxy --quick    # about 30 s, noisier

Every server runs in its own process: the upstream (a bare aiohttp handler, or the simulated vLLM
server paced at one chunk per 20 ms), campwatch's ProxyServer, and the bare pass-through (the floor:
the least any aiohttp proxy adds). The kernel places the processes (--pin puts the proxies on CPU 1
and the upstream and load generator on CPU 0; on this 2-core machine that raised p99s). Three parts:

1. Added latency: non-streamed chat requests at a fixed rate (open loop), direct / bare / campwatch
   interleaved in rounds; p50 and p99 of each and the difference to direct.
2. 64 concurrent streams from the paced upstream: tokens/s proxied over direct, added time to first
   token, and the proxy's CPU per chunk.
3. Capacity: 64 and 192 streams at a chunk every 10 ms from a cheap upstream: chunks/s delivered,
   the proxy's core share and its CPU per chunk (chunks per CPU-second = the one-core capacity).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench/model"
CHAT_BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hello " * 20}],
                        "max_tokens": 16}).encode()
CHAT_ANSWER = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "a short answer " * 4},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 21, "completion_tokens": 16, "total_tokens": 37},
}).encode()


def _event(i: int) -> bytes:
    """A completions chunk of the size vLLM sends (about 230 bytes)."""
    return b"data: " + json.dumps({
        "id": "cmpl-0123456789abcdef0123456789abcdef", "object": "text_completion", "created": 1795494036,
        "model": MODEL, "choices": [{"index": 0, "text": f" tok{i % 100}", "logprobs": None,
                                     "finish_reason": None, "stop_reason": None}]}).encode() + b"\n\n"


# --- server roles (each runs in its own process) ----------------------------------------------------

async def _fast_upstream(_: argparse.Namespace) -> web.BaseRunner:
    events = [_event(i) for i in range(100)]
    usage = b'data: {"id":"cmpl-x","object":"text_completion","created":1,"model":"' + MODEL.encode() + \
        b'","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}\n\n'

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        if request.path == "/v1/chat/completions":
            return web.Response(body=CHAT_ANSWER, content_type="application/json")
        parsed = json.loads(body)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        pace = float(parsed.get("pace_ms", 0)) / 1e3
        for i in range(int(parsed.get("max_tokens", 16))):
            if pace and i:
                await asyncio.sleep(pace)
            await response.write(events[i % 100])
        if (parsed.get("stream_options") or {}).get("include_usage"):
            await response.write(usage)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    runner = web.ServerRunner(web.Server(handle, access_log=None), handle_signals=False)
    await runner.setup()
    return runner


async def _paced_upstream(_: argparse.Namespace) -> web.BaseRunner:
    from agent.sim.model_server import SimServerConfig, SimulatedModelServer

    # A batch this large keeps the simulator's inter-token latency at 20 ms for 64 streams.
    server = SimulatedModelServer(SimServerConfig(model=MODEL, itl_seconds=0.02, tokens_per_chunk=1,
                                                  max_num_seqs=100_000, prefill_tokens_per_s=1e7,
                                                  refusal_rate=0.0))
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False)
    await runner.setup()
    return runner


class _DiscardingSink:
    """Stands in for the store writer's queue: accepts without blocking, keeps nothing."""

    def __init__(self) -> None:
        self.accepted = 0

    def offer(self, rows: Sequence[Any], *, drop_reason: str = "queue_full") -> int:
        self.accepted += len(rows)
        return len(rows)


async def _campwatch(args: argparse.Namespace) -> Any:
    from pydantic import SecretStr

    from agent.capture.proxy import ProxyServer
    from agent.config import CaptureSettings, ProxySettings

    sink: Any = _DiscardingSink()
    if os.environ.get(STORE_ENV):  # --store: records go through a real StoreWriter flushing each second
        import tempfile

        from agent.store.db import open_store
        from agent.store.writer import StoreWriter
        from agent.telemetry import Telemetry

        directory = tempfile.mkdtemp(prefix="bench-proxy-store-")
        engine = open_store(os.environ[STORE_ENV].replace("{dir}", directory), upgrade=True)
        sink = StoreWriter(engine, Telemetry("bench"))
        sink.start()
    proxy = ProxyServer(ProxySettings(listen="127.0.0.1:0", upstream=args.upstream),
                        CaptureSettings(caller_salt=SecretStr("bench")), "bench", sink)
    return proxy


STEADY_ENV = "CAMPWATCH_BENCH_STEADY_STATE"
"""0: the campwatch role skips what the Runner does once started (GIL switch interval, gc.freeze)."""
FREEZE_ENV = "CAMPWATCH_BENCH_GC_FREEZE"
"""0: the campwatch role sets the switch interval but leaves the GC unfrozen."""
STORE_ENV = "CAMPWATCH_BENCH_PROXY_STORE"
"""Set by --store (to the store URL, {dir} a temporary folder) for the campwatch role's process."""


async def _bare(args: argparse.Namespace) -> web.BaseRunner:
    """The floor: the least an aiohttp pass-through does (same server and client building blocks)."""
    from agent.capture.headers import client_response_headers, upstream_request_headers

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=4.0),
                                    auto_decompress=False,
                                    skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"))
    base = args.upstream
    CLEANUP.append(session.close)

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        async with session.request(request.method, base + request.raw_path, data=body or None,
                                   headers=upstream_request_headers(request.headers, identity_encoding=False),
                                   allow_redirects=False) as resp:
            if not resp.headers.get("Content-Type", "").startswith("text/event-stream"):
                return web.Response(body=await resp.read(), status=resp.status,
                                    headers=client_response_headers(resp.headers, keep_length=False))
            response = web.StreamResponse(status=resp.status,
                                          headers=client_response_headers(resp.headers, keep_length=False))
            await response.prepare(request)
            async for data in resp.content.iter_any():
                await response.write(data)
            await response.write_eof()
            return response

    runner = web.ServerRunner(web.Server(handle, access_log=None), handle_signals=False)
    await runner.setup()
    return runner


ROLES = {"fast-upstream": _fast_upstream, "paced-upstream": _paced_upstream, "campwatch": _campwatch,
         "bare": _bare}


async def _serve(args: argparse.Namespace) -> None:
    served = await ROLES[args.role](args)
    if isinstance(served, web.BaseRunner):
        site = web.TCPSite(served, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = served.addresses[0][1]
    else:
        port = await served.start()
        if os.environ.get(STEADY_ENV, "1") != "0":
            from agent.config import load_settings
            from agent.runner import enter_steady_state

            # as the Runner of `campwatch run` does once started (CAMPWATCH_SWITCH_INTERVAL_S moves it)
            wanted = {k: v for k, v in os.environ.items() if k == "CAMPWATCH_SWITCH_INTERVAL_S"}  # not the bench's
            enter_steady_state(load_settings(None, environ=wanted).switch_interval_s,
                               freeze=os.environ.get(FREEZE_ENV, "1") != "0")
    pauses: list[float] = []
    began: list[float] = []

    def full_gc(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                began[:] = [time.perf_counter()]
            elif began:
                pauses.append(time.perf_counter() - began[0])

    gc.callbacks.append(full_gc)
    print(f"READY {port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    print("GC " + json.dumps({"full_collections": len(pauses), "max_ms": max(pauses, default=0.0) * 1e3,
                              "total_ms": sum(pauses) * 1e3}), flush=True)
    if isinstance(served, web.BaseRunner):
        await served.cleanup()
        for hook in CLEANUP:
            await hook()
    else:
        await served.stop()


CLEANUP: list[Any] = []


# --- the load generator -----------------------------------------------------------------------------

@dataclass
class Server:
    name: str
    proc: subprocess.Popen[str]
    url: str

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    gc: dict[str, float] | None = None
    """Full (generation 2) garbage collections while it served, read at stop()."""

    def stop(self) -> None:
        try:
            out, _ = self.proc.communicate(timeout=10)  # closes stdin: the role's signal to stop
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return
        for line in out.splitlines():
            if line.startswith("GC "):
                self.gc = json.loads(line[3:])


def _spawn(role: str, cpu: int | None, upstream: str = "", *, uvloop: bool = False,
           env: dict[str, str] | None = None) -> Server:
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_proxy", "--role", role, "--upstream", upstream,
                             *(["--uvloop"] if uvloop else [])],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env=None if env is None else {**os.environ, **env})
    if cpu is not None:
        os.sched_setaffinity(proc.pid, {cpu})
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "READY":
        proc.kill()
        raise SystemExit(f"{role} did not start")
    return Server(role, proc, f"http://127.0.0.1:{line[1]}")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def _latency_run(session: aiohttp.ClientSession, url: str, n: int, rate: float) -> list[float]:
    latencies: list[float] = []
    start = time.perf_counter() + 0.05
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}

    async def one(i: int) -> None:
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        t0 = time.perf_counter()
        async with session.post(url + "/v1/chat/completions", data=CHAT_BODY, headers=headers) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(one(i) for i in range(n)))
    return latencies


@dataclass
class StreamRun:
    chunks: int
    wall_s: float
    ttfts: list[float]
    decode_rates: list[float]
    """Per stream: chunks after the first over the time from the first to the last one."""


async def _stream_run(session: aiohttp.ClientSession, url: str, streams: int, tokens: int,
                      spread_s: float = 0.0, pace_ms: float = 0.0) -> StreamRun:
    """`streams` streamed completions, started together or evenly over `spread_s` seconds.
    `pace_ms` asks the fast upstream for that gap between chunks (the simulator ignores it)."""
    run = StreamRun(0, 0.0, [], [])
    body = json.dumps({"model": MODEL, "prompt": "hello", "max_tokens": tokens, "stream": True,
                       "pace_ms": pace_ms}).encode()

    async def one(i: int) -> None:
        if spread_s:
            await asyncio.sleep(spread_s * i / streams)
        t0 = time.perf_counter()
        seen = 0
        first = last = 0.0
        async with session.post(url + "/v1/completions", data=body,
                                headers={"Content-Type": "application/json"}) as resp:
            async for data in resp.content.iter_any():
                now = time.perf_counter()
                if not seen:
                    first = now
                    run.ttfts.append(now - t0)
                if b"[DONE]" not in data or data.count(b"data: ") > 1:
                    last = now
                seen += data.count(b"data: ")
        run.chunks += seen - 1  # [DONE]
        if seen > 2 and last > first:
            run.decode_rates.append((seen - 2) / (last - first))

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(streams)))
    run.wall_s = time.perf_counter() - t0
    return run


async def _orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    pin = args.pin and len(os.sched_getaffinity(0)) >= 2
    client_cpu, proxy_cpu = (0, 1) if pin else (None, None)
    if pin:
        os.sched_setaffinity(0, {0})
    quick = args.quick
    results: dict[str, Any] = {"pinned": pin, "quick": quick, "uvloop": args.uvloop}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        # 1. Added latency at a fixed request rate.
        fast = _spawn("fast-upstream", client_cpu)
        camp = _spawn("campwatch", proxy_cpu, fast.url, uvloop=args.uvloop)
        bare = _spawn("bare", proxy_cpu, fast.url, uvloop=args.uvloop)
        targets = {"direct": fast.url, "bare": bare.url, "campwatch": camp.url}
        servers = {"bare": bare, "campwatch": camp}
        for name, env in args.variant:  # more campwatch processes, each with its own environment
            servers[name] = _spawn("campwatch", proxy_cpu, fast.url, uvloop=args.uvloop, env=env)
            targets[name] = servers[name].url
        # Short rounds, interleaved in rotating order: the machine is shared, and a noisy spell should
        # land on every variant rather than on one.
        rate, per_round, rounds = args.rate, 100, (9 if quick else 24)
        samples: dict[str, list[float]] = {name: [] for name in targets}
        cpu_s = dict.fromkeys(targets, 0.0)
        for url in targets.values():  # warm-up: connections, code paths
            await _latency_run(session, url, 100, rate)
        for r in range(rounds):
            order = list(targets)[r % len(targets):] + list(targets)[:r % len(targets)]
            for name in order:
                server = servers.get(name)
                cpu0 = server.cpu_seconds() if server else 0.0
                samples[name] += await _latency_run(session, targets[name], per_round, rate)
                cpu_s[name] += server.cpu_seconds() - cpu0 if server else 0.0
        results["latency"] = {name: {"p50_ms": _pct(v, 0.5) * 1e3, "p99_ms": _pct(v, 0.99) * 1e3, "n": len(v),
                                     "cpu_us_per_request": cpu_s[name] / len(v) * 1e6}
                              for name, v in samples.items()}
        results["latency"]["rate_per_s"] = rate
        if args.latency_only:
            for server in (*servers.values(), fast):
                server.stop()
            results["gc"] = {name: server.gc for name, server in servers.items()}
            return results

        # 3. Capacity: paced streams from the cheap upstream at a moderate and at a high offered load.
        # Under load a proxy reads several chunks per wake-up, so its CPU per chunk falls with load.
        cap_chunks, pace_ms = (150 if quick else 300), 10.0
        capacity: dict[str, Any] = {"pace_ms": pace_ms, "loads": []}
        for cap_streams in (64, 192):
            load: dict[str, Any] = {"streams": cap_streams, "offered_chunks_per_s": cap_streams * 1e3 / pace_ms}
            for name, url in (("direct", fast.url), ("bare", bare.url), ("campwatch", camp.url)):
                server = servers.get(name)
                await _stream_run(session, url, cap_streams, 3, pace_ms=pace_ms)  # warm-up: fill the pools
                cpu0 = server.cpu_seconds() if server else 0.0
                run = await _stream_run(session, url, cap_streams, cap_chunks, spread_s=pace_ms / 1e3,
                                        pace_ms=pace_ms)
                cpu = server.cpu_seconds() - cpu0 if server else 0.0
                row: dict[str, Any] = {"chunks": run.chunks, "chunks_per_s": run.chunks / run.wall_s}
                if server:
                    row |= {"cpu_s": cpu, "core_share": cpu / run.wall_s,
                            "cpu_us_per_chunk": cpu / run.chunks * 1e6, "chunks_per_cpu_s": run.chunks / cpu}
                load[name] = row
            capacity["loads"].append(load)
        results["capacity"] = capacity
        for server in (*servers.values(), fast):
            server.stop()
        results["gc"] = {name: server.gc for name, server in servers.items()}

        # 2. 64 concurrent streams paced at 20 ms per chunk.
        paced = _spawn("paced-upstream", client_cpu)
        camp = _spawn("campwatch", proxy_cpu, paced.url, uvloop=args.uvloop)
        bare = _spawn("bare", proxy_cpu, paced.url, uvloop=args.uvloop)
        streams, tokens = 64, (50 if quick else 100)
        targets = {"direct": paced.url, "bare": bare.url, "campwatch": camp.url}
        servers = {"bare": bare, "campwatch": camp}
        paced_results: dict[str, Any] = {"streams": streams, "tokens_per_stream": tokens}
        # staggered: the 64 streams start evenly over 0.5 s (all overlap for most of their life);
        # burst: all 64 arrive at once, the worst case for time to first token.
        for mode, spread in (("staggered", 0.5), ("burst", 0.0)):
            runs: dict[str, list[StreamRun]] = {"direct": [], "bare": [], "campwatch": []}
            cpu_used = {"bare": 0.0, "campwatch": 0.0}
            for r in range(1 if quick else 2):
                order = list(targets)[r % 3:] + list(targets)[:r % 3]
                for name in order:
                    # warm-up right before: the proxies' idle upstream connections expire after 4 s
                    await _stream_run(session, targets[name], streams, 3)
                    server = servers.get(name)
                    cpu0 = server.cpu_seconds() if server else 0.0
                    runs[name].append(await _stream_run(session, targets[name], streams, tokens, spread))
                    if server:
                        cpu_used[name] += server.cpu_seconds() - cpu0
            by_variant: dict[str, Any] = {}
            for name, got in runs.items():
                chunks = sum(run.chunks for run in got)
                wall = sum(run.wall_s for run in got)
                ttfts = [t for run in got for t in run.ttfts]
                rates = [rate for run in got for rate in run.decode_rates]
                by_variant[name] = {"tokens": chunks, "tokens_per_s": chunks / wall,
                                    "decode_tokens_per_s": statistics.mean(rates) * streams,
                                    "ttft_p50_ms": statistics.median(ttfts) * 1e3,
                                    "ttft_p99_ms": _pct(ttfts, 0.99) * 1e3}
                if name in cpu_used:
                    by_variant[name]["cpu_us_per_chunk"] = cpu_used[name] / chunks * 1e6
                    by_variant[name]["cpu_share_of_core"] = cpu_used[name] / wall
            paced_results[mode] = by_variant
        results["paced"] = paced_results
        for server in (camp, bare, paced):
            server.stop()
    return results


def _report(res: dict[str, Any]) -> None:
    lat = res["latency"]
    d, b, c = lat["direct"], lat["bare"], lat["campwatch"]
    names = [name for name in lat if name not in ("rate_per_s",)]
    print(f"pinned={res['pinned']} quick={res['quick']} uvloop={res['uvloop']}  "
          f"load avg {os.getloadavg()[0]:.2f} (shared machine)")
    print(f"\n1. Non-streamed chat at {lat['rate_per_s']:.0f} req/s, {d['n']} requests each, fast upstream")
    print(f"   {'':14} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'added p99':>10} {'proxy CPU us/req':>17}")
    for name in names:
        row = lat[name]
        print(f"   {name:14} {row['p50_ms']:8.3f} {row['p99_ms']:8.3f} "
              f"{row['p50_ms'] - d['p50_ms']:10.3f} {row['p99_ms'] - d['p99_ms']:10.3f} "
              f"{row['cpu_us_per_request'] if name != 'direct' else float('nan'):17.0f}")
    print(f"   campwatch over the bare floor: p50 +{c['p50_ms'] - b['p50_ms']:.3f} ms, "
          f"p99 +{c['p99_ms'] - b['p99_ms']:.3f} ms")
    bare_p99 = b["p99_ms"] - d["p99_ms"]
    for name in names:
        if name in ("direct", "bare"):
            continue
        row = lat[name]
        added_p50, added_p99 = row["p50_ms"] - d["p50_ms"], row["p99_ms"] - d["p99_ms"]
        p99_ratio = added_p99 / bare_p99 if bare_p99 > 0 else float("nan")
        cpu_ratio = row["cpu_us_per_request"] / b["cpu_us_per_request"]
        print(f"   RATIO {name}: added p99 {p99_ratio:.2f}x bare's (target <= 1.5x; {added_p99:.2f} ms, target <= 2),"
              f" CPU per request {cpu_ratio:.2f}x bare's (target <= 1.2x), added p50 {added_p50:.2f} ms (target <= 1)")
    for name, stats in res.get("gc", {}).items():
        if stats:
            print(f"   full GC in {name}: {stats['full_collections']:.0f} collections, longest "
                  f"{stats['max_ms']:.1f} ms, {stats['total_ms']:.0f} ms in all"
                  + ("" if "paced" not in res else " (parts 1 and 3)"))
    if "paced" not in res:
        return
    p = res["paced"]
    print(f"\n2. {p['streams']} concurrent streams x {p['tokens_per_stream']} tokens, a chunk every 20 ms")
    for mode in ("staggered", "burst"):
        rows = p[mode]
        base = rows["direct"]
        print(f"   {mode} start" + (" (evenly over 0.5 s)" if mode == "staggered" else " (all at once)"))
        print(f"   {'':10} {'decode tok/s':>12} {'ratio':>6} {'e2e tok/s':>9} {'ratio':>6} {'TTFT p50 ms':>11} "
              f"{'added':>6} {'TTFT p99':>8} {'CPU us/chunk':>12} {'core':>5}")
        for name in ("direct", "bare", "campwatch"):
            row = rows[name]
            print(f"   {name:10} {row['decode_tokens_per_s']:12.0f} "
                  f"{row['decode_tokens_per_s'] / base['decode_tokens_per_s']:6.3f} {row['tokens_per_s']:9.0f} "
                  f"{row['tokens_per_s'] / base['tokens_per_s']:6.3f} {row['ttft_p50_ms']:11.2f} "
                  f"{row['ttft_p50_ms'] - base['ttft_p50_ms']:6.2f} {row['ttft_p99_ms']:8.2f} "
                  f"{row.get('cpu_us_per_chunk', float('nan')):12.1f} "
                  f"{row.get('cpu_share_of_core', float('nan')):5.2f}")
    print("   decode tok/s: chunks after the first over first-to-last time, summed over streams; e2e: all chunks"
          " over wall time incl. TTFT.\n   (target: campwatch tokens/s ratio >= 0.98)")
    cap = res["capacity"]
    print(f"\n3. Capacity: paced streams (a chunk every {cap['pace_ms']:.0f} ms) from a cheap upstream; "
          "the proxies have one core")
    for load in cap["loads"]:
        print(f"   {load['streams']} streams, offered {load['offered_chunks_per_s']:.0f} chunks/s")
        print(f"   {'':10} {'chunks/s':>9} {'proxy core':>10} {'CPU us/chunk':>13} {'chunks per CPU-second':>22}")
        for name in ("direct", "bare", "campwatch"):
            row = load[name]
            print(f"   {name:10} {row['chunks_per_s']:9.0f} {row.get('core_share', float('nan')):10.2f} "
                  f"{row.get('cpu_us_per_chunk', float('nan')):13.1f} "
                  f"{row.get('chunks_per_cpu_s', float('nan')):22.0f}")
    print("   chunks per CPU-second is the most chunks/s one core forwards at that load; direct shows what\n"
          "   the upstream and the load generator (sharing the other core) can do at all.")


def _variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, assignments = text.partition(":")
    env = dict(item.split("=", 1) for item in assignments.split(",") if item)
    if not name or name in ("direct", "bare", "campwatch"):
        raise argparse.ArgumentTypeError(f"expected NAME:ENV=VALUE[,ENV=VALUE] with a new name, got {text!r}")
    return name, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=sorted(ROLES), help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer requests: about 30 s")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second in part 1")
    parser.add_argument("--pin", action="store_true",
                        help="pin the proxies to CPU 1 and the upstream and load generator to CPU 0")
    parser.add_argument("--uvloop", action="store_true", help="run both proxies on uvloop (if installed)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--store", nargs="?", const="sqlite:///{dir}/bench.db",
                        help="campwatch's records go to a real StoreWriter flushing each second, as inside "
                             "`campwatch run` (default sqlite:///{dir}/bench.db; a postgresql URL works too)")
    parser.add_argument("--latency-only", action="store_true", help="part 1 only")
    parser.add_argument("--variant", action="append", default=[], type=_variant, metavar="NAME:ENV=VALUE[,ENV=VALUE]",
                        help="part 1 also measures a campwatch proxy process named NAME with this environment "
                             "(repeatable), e.g. si1ms:CAMPWATCH_SWITCH_INTERVAL_S=0.001 or nostore:"
                             f"{STORE_ENV}= (records discarded)")
    args = parser.parse_args()
    if args.store and not args.role:
        os.environ[STORE_ENV] = args.store
    if args.role:
        if args.uvloop and args.role in ("campwatch", "bare"):
            import uvloop  # optional: not a campwatch dependency

            uvloop.run(_serve(args))
        else:
            asyncio.run(_serve(args))
        return
    started = time.perf_counter()
    results = asyncio.run(_orchestrate(args))
    results["runtime_s"] = time.perf_counter() - started
    _report(results)
    print(f"\nruntime {results['runtime_s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
