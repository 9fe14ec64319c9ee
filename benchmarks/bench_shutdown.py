"""Seconds from SIGTERM to exit of `campwatch run`, against the configured shutdown_grace_s.

Baseline (same run): the same process with nothing in flight and a store that answers. Faults: a
stream open through the proxy to an upstream that never ends it, with the SQLite file locked by
another connection, or with a private PostgreSQL instance frozen by SIGSTOP (never the shared one).

    .venv/bin/python -m benchmarks.bench_shutdown [--grace 3 10]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

import aiohttp

from tests.integration.faults import Campwatch, EndlessStream
from tests.support.net import free_port
from tests.support.private_pg import PrivatePostgres

ROOT = Path(__file__).resolve().parents[1]

CHAT = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hello"}]}


def _config(path: Path, grace: float, url: str, metrics: int, proxy: int, upstream: str) -> Path:
    path.write_text(f'shutdown_grace_s = {grace}\n[store]\nurl = "{url}"\nflush_interval_s = 0.2\n'
                    f'[gpu]\nenabled = false\n[metrics]\nport = {metrics}\n[proxy]\nlisten = "127.0.0.1:{proxy}"\n'
                    f'upstream = "http://{upstream}"\n[drift]\nenabled = false\n')
    return path


async def one(fault: str, grace: float, pg: PrivatePostgres | None, pg_url: str) -> tuple[float, int, str]:
    tmp = Path(tempfile.mkdtemp(prefix="campwatch-bench-shutdown-"))
    upstream = EndlessStream()
    address = await upstream.start()
    metrics, proxy = free_port(), free_port()
    url = pg_url if fault == "postgresql frozen" else f"sqlite:///{tmp / 's.db'}"
    cw = Campwatch(["run", "--config", str(_config(tmp / "c.toml", grace, url, metrics, proxy, address))])
    await cw.start()
    lock: sqlite3.Connection | None = None
    try:
        await cw.wait_http(f"http://127.0.0.1:{metrics}/metrics", "campwatch_", timeout=60)
        async with aiohttp.ClientSession() as session:
            resp = None
            if fault != "baseline":
                if fault == "sqlite locked":
                    lock = sqlite3.connect(tmp / "s.db", timeout=20, isolation_level=None)
                    lock.execute("BEGIN EXCLUSIVE")
                elif pg is not None:
                    pg.freeze()
                resp = await session.post(f"http://127.0.0.1:{proxy}/v1/chat/completions", json=CHAT)
                await resp.content.readline()
                async with session.post(f"http://127.0.0.1:{proxy}/v1/chat/completions",
                                        json={**CHAT, "stream": False}) as done:  # a row for the writer
                    await done.read()
                await asyncio.sleep(0.5)
            code, seconds = await cw.terminate(timeout=grace + 60)
            if resp is not None:
                resp.close()
        return seconds, code, cw.output
    finally:
        if pg is not None:
            pg.thaw()
        if lock is not None:
            lock.close()
        await upstream.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grace", type=float, nargs="+", default=[3.0, 10.0])
    parser.add_argument("--faults", nargs="+", default=["baseline", "sqlite locked", "postgresql frozen"])
    parser.add_argument("--verbose", action="store_true", help="print each run's shutdown log lines")
    args = parser.parse_args()
    pg = PrivatePostgres()
    try:
        await asyncio.to_thread(pg.start)
        pg_url = pg.url()
        print(f"{'fault':<20} {'grace s':>8} {'exit s':>7} {'exit/grace':>10} {'code':>5}")
        worst = 0.0
        for grace in args.grace:
            for fault in args.faults:
                seconds, code, output = await one(fault, grace, pg, pg_url)
                print(f"{fault:<20} {grace:>8g} {seconds:>7.2f} {seconds / grace:>10.2f} {code:>5}", flush=True)
                if args.verbose:
                    print("\n".join(line for line in output.splitlines() if "alembic" not in line))
                if fault != "baseline":
                    worst = max(worst, seconds - grace)
                if code != 0:
                    return 1
        print(f"worst overshoot past the grace: {worst:.2f} s")
    finally:
        pg.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
