"""`make soak-faults`: `campwatch run` under faults, against a private PostgreSQL and SQLite.

Two sidecars run as their own processes (8 fake-NVML GPUs each, one engine endpoint): one stores in
a PRIVATE PostgreSQL (initdb/pg_ctl on another port, tests/support/private_pg.py), one in SQLite.
A small aiohttp server on 127.0.0.1 is the engine; every 20 s it may turn hostile for a while (NUL
in model names, 300-character labels, a 5 MB page, NaN and negative counters). Each sidecar goes
through random faults: the store stopped and started (PostgreSQL) or locked by another writer
(SQLite), PostgreSQL frozen (SIGSTOP) and the sidecar sent SIGTERM while it is, kill -9 and
restart, SIGTERM and restart.

At the end both sidecars run once more until the spool is replayed, then the soak checks:
- 0 corrupt databases: SQLite PRAGMA integrity_check is "ok", both at the head migration;
- no row stored twice: gpu_samples unique on (host, uuid, ts), engine_samples on
  (host, server, model, engine, ts);
- every row accounted for. Per sidecar process ("life"), from its /metrics (scraped every second)
  and its exit line (`store writer stopped ... accepted= written= spooled=`):
      accepted + rows in the spool at start = written + dropped + rows in the spool at exit + lost
  where dropped is campwatch_dropped_total for reasons after acceptance (rejected, store_error,
  spool_full, spool_corrupt) and spool rows are counted from the segment files less the lines
  spool_replays marks as committed. Over the whole run: rows in the database = sum of written, so
  lost is what a kill -9 took from memory (the rows queued since the last flush; after a SIGTERM it
  must be 0). Rows refused before acceptance (queue_full) are counted in campwatch_dropped_total too.

    .venv/bin/python -m benchmarks.soak_faults [--minutes 30] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select, text

from agent.store.migrate import current_revision, head_revision
from agent.store.schema import gpu_samples, spool_replays
from agent.store.spool import SUFFIX
from agent.utc import as_utc
from tests.support.fakenvml import SCENARIOS, build_fake_library
from tests.support.net import free_port
from tests.support.private_pg import PrivatePostgres

ROOT = Path(__file__).resolve().parents[1]

AFTER_ACCEPT = ("rejected", "store_error", "spool_full", "spool_corrupt")
PAGE = os.sysconf("SC_PAGE_SIZE")
BASE_PAGE = (ROOT / "tests" / "fixtures" / "vllm" / "datadog_vllm_metrics.txt").read_text()
MODEL = 'model_name="facebook/opt-125m"'


# --- the engine endpoint ---------------------------------------------------------------------------

class Engine:
    MODES = ("normal", "nul", "long", "huge", "nan")

    def __init__(self) -> None:
        self.mode = "normal"
        self.served: dict[str, int] = {}

    def page(self) -> str:
        if self.mode == "nul":
            return BASE_PAGE.replace(MODEL, 'model_name="facebook/\x00opt"')
        if self.mode == "long":
            return BASE_PAGE.replace(MODEL, f'model_name="{"m" * 300}"')
        if self.mode == "huge":
            junk = "".join(f'junk_family_{i % 500}{{k="{i}"}} {i}\n' for i in range(150_000))
            return BASE_PAGE + junk
        if self.mode == "nan":
            return re.sub(r"(_total\{[^}]*\}) [0-9.e+]+", lambda m: f"{m.group(1)} {random.choice(['NaN', '-5'])}",
                          BASE_PAGE)
        return BASE_PAGE

    async def handle(self, _request: web.Request) -> web.Response:
        self.served[self.mode] = self.served.get(self.mode, 0) + 1
        return web.Response(text=self.page(), content_type="text/plain")


# --- one sidecar -----------------------------------------------------------------------------------

@dataclass
class Life:
    spool_before: int
    accepted: float = 0.0
    written: float = 0.0
    dropped: dict[str, float] = field(default_factory=dict)
    ended: str = ""
    exit_s: float | None = None
    exit_code: int | None = None
    rss_max: int = 0
    spool_after: int = 0
    started_at: float = 0.0
    ended_at: float = 0.0
    lost_ticks: int = 0

    @property
    def dropped_after_accept(self) -> float:
        return sum(v for k, v in self.dropped.items() if k in AFTER_ACCEPT)

    @property
    def lost(self) -> float:
        return self.accepted + self.spool_before - self.written - self.dropped_after_accept - self.spool_after


class Sidecar:
    def __init__(self, name: str, url: str, work: Path, engine_port: int) -> None:
        self.name = name
        self.url = url
        self.spool = work / f"spool-{name}"
        self.work = work
        self.port = free_port()
        library = build_fake_library()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPWATCH_")}
        self.env.update({
            "LD_LIBRARY_PATH": f"{library.parent}:{self.env.get('LD_LIBRARY_PATH', '')}",
            "FAKENVML_SCENARIO": str(SCENARIOS / "h100_8gpu.scn"),
            "CAMPWATCH_STORE__SPOOL_DIR": str(self.spool), "CAMPWATCH_STORE__SPOOL_AFTER_S": "5",
            "CAMPWATCH_STORE__UNHEALTHY_AFTER_S": "20", "CAMPWATCH_COST__INTERVAL_S": "60",
        })
        self.args = [sys.executable, "-m", "agent.cli", "run", "--metrics-port", str(self.port), "--db", url,
                     "--engine-url", f"http://127.0.0.1:{engine_port}/metrics", "--engine-interval", "1",
                     "--host", f"soak-{name}"]
        self.proc: asyncio.subprocess.Process | None = None
        self.life: Life | None = None
        self.lives: list[Life] = []
        self.health: dict[int, int] = {}
        self._log: Any = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self, spool_before: int) -> None:
        self._log = open(self.work / f"{self.name}-{len(self.lives)}.log", "w+b")  # noqa: SIM115
        self.life = Life(spool_before, started_at=time.time())
        self.proc = await asyncio.create_subprocess_exec(*self.args, env=self.env, cwd=ROOT,
                                                         stdout=asyncio.subprocess.DEVNULL, stderr=self._log)
        self._watch = asyncio.create_task(self._scrape_loop())

    async def scrape(self, health: bool = True) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            try:
                async with session.get(f"http://127.0.0.1:{self.port}/metrics") as r:
                    page = await r.text()
                self._take(page)
                if health:
                    async with session.get(f"http://127.0.0.1:{self.port}/healthz") as r:
                        self.health[r.status] = self.health.get(r.status, 0) + 1
            except (TimeoutError, aiohttp.ClientError):
                pass

    async def _scrape_loop(self) -> None:
        while self.proc is not None and self.proc.returncode is None:
            await self.scrape()
            try:
                statm = Path(f"/proc/{self.proc.pid}/statm").read_text().split()
                assert self.life is not None
                self.life.rss_max = max(self.life.rss_max, int(statm[1]) * PAGE)
            except (OSError, IndexError):
                pass
            await asyncio.sleep(1.0)

    def _take(self, page: str) -> None:
        assert self.life is not None
        for family in text_string_to_metric_families(page):
            if family.name == "campwatch_store_rows_accepted":
                self.life.accepted = max(s.value for s in family.samples)
            elif family.name == "campwatch_samples_written":
                self.life.written = sum(s.value for s in family.samples if s.name.endswith("_total"))
            elif family.name == "campwatch_dropped":
                self.life.dropped = {s.labels["reason"]: s.value for s in family.samples
                                     if s.name.endswith("_total")}

    async def end(self, how: str) -> Life:
        assert self.proc is not None and self.life is not None
        life = self.life
        life.ended = how
        started = time.monotonic()
        life.ended_at = time.time()
        if how == "kill9":
            if self._watch is not None:
                self._watch.cancel()
            await self.scrape(health=False)  # the counters just before the kill
            self.proc.send_signal(signal.SIGKILL)
        else:
            self.proc.send_signal(signal.SIGTERM)
        try:
            life.exit_code = await asyncio.wait_for(self.proc.wait(), timeout=60)
        except TimeoutError:
            self.proc.kill()
            life.exit_code = await self.proc.wait()
            life.ended += "+hung(killed after 60 s)"
        life.exit_s = time.monotonic() - started
        if self._watch is not None:
            self._watch.cancel()
        self._log.seek(0)
        log = self._log.read().decode(errors="replace")
        self._log.close()
        found = re.findall(r"store writer stopped in [0-9.]+ s: accepted=(\d+) written=(\d+) spooled=(\d+)", log)
        if found and how != "kill9":
            life.accepted, life.written = float(found[-1][0]), float(found[-1][1])
        self.lives.append(life)
        return life


def spool_rows(directory: Path, url: str) -> int:
    """Rows in the spool not yet committed: non-empty lines less those spool_replays marks."""
    if not directory.exists():
        return 0
    lines: dict[str, list[bool]] = {}
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        lines[path.name[: -len(SUFFIX)]] = [bool(line.strip()) for line in path.read_text(errors="replace")
                                            .splitlines()]
    if not lines:
        return 0
    marked: dict[str, set[int]] = {}
    try:
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"),
                               connect_args={"connect_timeout": 5} if url.startswith("postgres") else {})
        with engine.connect() as conn:
            for segment, first, rows in conn.execute(select(spool_replays.c.segment, spool_replays.c.first_line,
                                                            spool_replays.c.rows)):
                marked.setdefault(segment, set()).update(range(first, first + rows))
        engine.dispose()
    except Exception:
        pass
    return sum(1 for seg, flags in lines.items() for i, full in enumerate(flags)
               if full and i not in marked.get(seg, set()))


# --- faults ------------------------------------------------------------------------------------------

async def fault_loop(side: Sidecar, pg: PrivatePostgres | None, end_at: float, rng: random.Random,
                     events: list[dict[str, Any]]) -> None:
    faults = ["store_outage", "kill9", "sigterm"] + (["freeze_sigterm"] if pg else [])
    while time.monotonic() < end_at:
        await asyncio.sleep(rng.uniform(8, 20))
        fault = rng.choice(faults)
        event: dict[str, Any] = {"sidecar": side.name, "fault": fault, "t": round(time.monotonic(), 1)}
        if fault == "store_outage":
            seconds = rng.uniform(8, 25)
            if pg is not None:
                await asyncio.to_thread(pg.stop)
                await asyncio.sleep(seconds)
                await asyncio.to_thread(pg.start)
            else:
                await asyncio.to_thread(_lock_sqlite, side.url, seconds)
            event["seconds"] = round(seconds, 1)
        elif fault == "freeze_sigterm":
            assert pg is not None
            await asyncio.sleep(1)
            pg.freeze()
            await asyncio.sleep(rng.uniform(2, 6))
            life = await side.end("sigterm_frozen")
            pg.thaw()
            event.update(exit_s=round(life.exit_s or 0, 2), code=life.exit_code)
            life.spool_after = spool_rows(side.spool, side.url)
            await side.start(life.spool_after)
        else:
            life = await side.end(fault)
            event.update(exit_s=round(life.exit_s or 0, 2), code=life.exit_code)
            life.spool_after = spool_rows(side.spool, side.url)
            await side.start(life.spool_after)
        events.append(event)
        print(json.dumps(event), flush=True)


def _lock_sqlite(url: str, seconds: float) -> None:
    """Another writer holds the SQLite database exclusively: campwatch's writes fail (locked)."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


async def hostile_loop(engine: Engine, end_at: float, rng: random.Random) -> None:
    """20 s normal, then 10-20 s of the next hostile mode in turn, and so on."""
    hostile = [m for m in Engine.MODES if m != "normal"]
    turn = rng.randrange(len(hostile))
    while time.monotonic() < end_at:
        engine.mode = "normal"
        await asyncio.sleep(20)
        engine.mode = hostile[turn % len(hostile)]
        turn += 1
        await asyncio.sleep(rng.uniform(10, 20))
    engine.mode = "normal"


# --- checks ------------------------------------------------------------------------------------------

def gpu_tick_losses(url: str, host: str, lives: list[Life]) -> None:
    """Per life, GPU ticks (8 rows each at 1 Hz) missing from the database between the life's first
    stored tick and its end: what a kill -9 took from memory (±1 tick of timing jitter)."""
    engine = create_engine(url, connect_args={"connect_timeout": 5} if url.startswith("postgres") else {})
    with engine.connect() as conn:
        stamps = sorted({as_utc(ts).timestamp() for ts in conn.execute(
            select(gpu_samples.c.ts).where(gpu_samples.c.host == host).distinct()).scalars()})
    engine.dispose()
    for life in lives:
        inside = [t for t in stamps if life.started_at <= t <= life.ended_at]
        if inside:
            expected = int(life.ended_at - inside[0])  # ticks from the first stored one to the signal
            life.lost_ticks = max(expected - len(inside) + 1, 0)


def check_database(url: str) -> dict[str, Any]:
    engine = create_engine(url, connect_args={"connect_timeout": 5} if url.startswith("postgres") else {})
    out: dict[str, Any] = {"revision": current_revision(engine), "head": head_revision()}
    with engine.connect() as conn:
        if url.startswith("sqlite"):
            out["integrity_check"] = conn.exec_driver_sql("PRAGMA integrity_check").scalar()
        out["gpu_rows"] = conn.execute(text("SELECT count(*) FROM gpu_samples")).scalar()
        out["gpu_duplicates"] = conn.execute(text(
            "SELECT count(*) FROM (SELECT host, uuid, ts FROM gpu_samples GROUP BY host, uuid, ts "
            "HAVING count(*) > 1) d")).scalar()
        out["engine_rows"] = conn.execute(text("SELECT count(*) FROM engine_samples")).scalar()
        out["engine_duplicates"] = conn.execute(text(
            "SELECT count(*) FROM (SELECT host, server, model, engine, ts FROM engine_samples "
            "GROUP BY host, server, model, engine, ts HAVING count(*) > 1) d")).scalar()
        out["longest_model"] = conn.execute(text("SELECT max(length(model)) FROM engine_samples")).scalar()
    engine.dispose()
    return out


async def main(minutes: float, seed: int) -> int:
    rng = random.Random(seed)
    engine = Engine()
    app = web.Application()
    app.add_routes([web.get("/metrics", engine.handle)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    engine_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", engine_port).start()
    with tempfile.TemporaryDirectory(prefix="campwatch-soak-faults-") as tmp:
        work = Path(tmp)
        pg = PrivatePostgres()
        pg.start()
        try:
            pg_url = pg.create_database("soak")
            sqlite_url = f"sqlite:///{work / 'soak.db'}"
            sides = [Sidecar("pg", pg_url, work, engine_port), Sidecar("sqlite", sqlite_url, work, engine_port)]
            for side in sides:
                await side.start(0)
            print(f"soak-faults: {minutes:g} min, seed {seed}; sidecars on :{sides[0].port} (PostgreSQL "
                  f":{pg.port}) and :{sides[1].port} (SQLite)", flush=True)
            end_at = time.monotonic() + minutes * 60
            events: list[dict[str, Any]] = []
            await asyncio.gather(fault_loop(sides[0], pg, end_at, rng, events),
                                 fault_loop(sides[1], None, end_at, rng, events),
                                 hostile_loop(engine, end_at, rng))
            if not pg.running():
                pg.start()
            # let each sidecar replay its spool, then stop it cleanly
            for side in sides:
                life = await side.end("sigterm")
                life.spool_after = spool_rows(side.spool, side.url)
                await side.start(life.spool_after)
            await asyncio.sleep(20)
            for side in sides:
                life = await side.end("final")
                life.spool_after = spool_rows(side.spool, side.url)
            checks = {side.name: check_database(side.url) for side in sides}
            for side in sides:
                gpu_tick_losses(side.url, f"soak-{side.name}", side.lives)
        finally:
            pg.destroy()
    await runner.cleanup()
    return report(sides, checks, events, engine)


def report(sides: list[Sidecar], checks: dict[str, dict[str, Any]], events: list[dict[str, Any]],
           engine: Engine) -> int:
    failures = []
    print("\nengine pages served by mode:", engine.served)
    for side in sides:
        check = checks[side.name]
        stored = check["gpu_rows"] + check["engine_rows"]
        written = sum(life.written for life in side.lives)
        accepted = sum(life.accepted for life in side.lives)
        dropped: dict[str, float] = {}
        for life in side.lives:
            for k, v in life.dropped.items():
                dropped[k] = dropped.get(k, 0) + v
        kills = [life for life in side.lives if life.ended == "kill9"]
        terms = [life for life in side.lives if life.ended != "kill9"]
        lost_term = sum(life.lost for life in terms)
        spool_left = side.lives[-1].spool_after
        unaccounted = accepted - stored - sum(v for k, v in dropped.items() if k in AFTER_ACCEPT) - spool_left
        exits = sorted(life.exit_s or 0 for life in terms)
        print(f"\n[{side.name}] {len(side.lives)} lives ({len(kills)} kill -9, {len(terms)} SIGTERM); "
              f"database: {check}")
        print(f"  rows accepted {accepted:.0f}, in the database {stored}, dropped {dropped}, spool left "
              f"{spool_left}: {unaccounted:.0f} not stored nor counted (what kill -9 took from memory)")
        print(f"  per SIGTERM life, accepted + spool before - written - dropped - spool after = "
              f"{[round(life.lost) for life in terms]}")
        print(f"  GPU ticks (8 rows each) missing per kill -9: {[life.lost_ticks for life in kills]}; "
              f"per SIGTERM life: {[life.lost_ticks for life in terms]}")
        print(f"  SIGTERM exit s: max {max(exits, default=0):.2f}, median "
              f"{exits[len(exits) // 2] if exits else 0:.2f}; frozen-store SIGTERMs: "
              f"{[round(life.exit_s or 0, 2) for life in side.lives if life.ended.startswith('sigterm_frozen')]}")
        print(f"  RSS max MiB per life: {[round(life.rss_max / 2**20) for life in side.lives]}")
        print(f"  /healthz answers: {side.health}")
        print(f"  exit codes: {sorted({life.exit_code for life in side.lives}, key=str)}")
        if check.get("integrity_check", "ok") != "ok":
            failures.append(f"{side.name}: integrity_check {check['integrity_check']}")
        if check["revision"] != check["head"]:
            failures.append(f"{side.name}: revision {check['revision']} is not head {check['head']}")
        if check["gpu_duplicates"] or check["engine_duplicates"]:
            failures.append(f"{side.name}: rows stored twice")
        if abs(lost_term) > 0.5:
            failures.append(f"{side.name}: {lost_term:.0f} rows unaccounted for over SIGTERMs")
        if stored < written:
            failures.append(f"{side.name}: {written - stored:.0f} rows counted written are not in the database")
        if any(life.ended.endswith("killed after 60 s)") for life in side.lives):
            failures.append(f"{side.name}: a SIGTERM did not end the process within 60 s")
    print(f"\nfaults: {len(events)}")
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.minutes, args.seed)))
