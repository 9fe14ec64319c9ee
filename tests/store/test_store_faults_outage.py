"""Findings 3, 4, 5 (store side), against a private PostgreSQL that is stopped and frozen, and on
SQLite: rows queued while the store is down go to the spool and are replayed exactly once (also
after a restart and after a crash between commit and segment removal); stop() returns within its
deadline while the server hangs; a failing store backs off, logs at a rate limit and is reported
by campwatch_store_up, campwatch_spool_bytes, campwatch_store_oldest_unwritten_seconds and /healthz."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event

from agent.store import rows as rows_module
from agent.store.db import Timeouts, open_engine, open_store
from agent.store.migrate import upgrade
from agent.store.schema import spool_replays
from agent.store.spool import Spool
from agent.store.writer import FORGET_BATCH, StoreWriter
from agent.telemetry import Telemetry
from tests.support.clock import FakeClock
from tests.support.private_pg import PrivatePostgres, private_pg
from tests.support.rows import count, gpu_rows

__all__ = ["private_pg"]

FAST = Timeouts(connect_timeout_s=1, statement_timeout_s=5, lock_timeout_s=2, busy_timeout_s=1)


@pytest.fixture
def pg(private_pg: PrivatePostgres) -> Iterator[tuple[PrivatePostgres, str]]:
    if not private_pg.running():
        private_pg.start()
    url = private_pg.create_database(f"cw_{uuid.uuid4().hex[:10]}")
    engine = open_engine(url, FAST)
    upgrade(engine)
    engine.dispose()
    yield private_pg, url
    private_pg.thaw()
    if not private_pg.running():
        private_pg.start()


def _points(telemetry: Telemetry) -> dict[str, float]:
    return {p.name: p.value for p in telemetry.points() if not p.labels}


def _writer(engine: Engine, spool_dir: Path, telemetry: Telemetry, **kw: object) -> StoreWriter:
    return StoreWriter(engine, telemetry, spool=Spool(spool_dir, telemetry), **kw)  # type: ignore[arg-type]


def test_rows_queued_while_postgres_is_down_are_spooled_then_replayed_once_after_a_restart(
        pg: tuple[PrivatePostgres, str], tmp_path: Path) -> None:
    server, url = pg
    engine = open_engine(url, FAST)
    telemetry = Telemetry("h1")
    clock = FakeClock()
    writer = _writer(engine, tmp_path / "spool", telemetry, spool_after_s=5.0, unhealthy_after_s=60.0,
                     clock=clock)
    writer.offer(gpu_rows(50))
    assert writer.flush() == 50
    server.stop()
    writer.offer(gpu_rows(70, start=50))
    assert writer.flush() == 0
    assert writer.pending() == 70  # kept in memory first
    assert _points(telemetry)["campwatch_store_up"] == 0.0
    clock.now += 6  # the outage outlasts spool_after_s: the queue goes to disk
    writer.offer(gpu_rows(30, start=120))
    assert writer.flush() == 0
    assert writer.pending() == 0
    points = _points(telemetry)
    assert points["campwatch_spool_bytes"] > 0
    assert points["campwatch_store_oldest_unwritten_seconds"] > 0
    assert writer.health()[0] is True
    clock.now += 60
    ok, why = writer.health()
    assert ok is False and "store unwritable for 66 s" in why
    writer.stop(timeout_s=2.0)  # the agent exits while the store is down
    engine.dispose()

    server.start()
    engine = open_engine(url, FAST)
    telemetry = Telemetry("h1")
    restarted = _writer(engine, tmp_path / "spool", telemetry)
    assert restarted.flush() == 100
    assert count(engine) == 150
    assert _points(telemetry)["campwatch_spool_bytes"] == 0.0
    restarted.offer(gpu_rows(1, start=150))
    assert restarted.flush() == 1
    # markers of settled batches are deleted FORGET_BATCH at a time, so they never pile up: left
    # are at most that many, the latest flush's and the one the first writer never got to forget
    # (retention removes those)
    for i in range(2 * FORGET_BATCH):
        restarted.offer(gpu_rows(1, start=151 + i))
        assert restarted.flush() == 1
    assert 1 <= count(engine, spool_replays) <= FORGET_BATCH + 2
    assert count(engine) == 151 + 2 * FORGET_BATCH
    assert restarted.health() == (True, "ok")
    engine.dispose()


def test_a_crash_between_commit_and_removing_the_segment_does_not_store_rows_twice(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = open_store(db_url, upgrade=True)
    telemetry = Telemetry("h1")
    spool = Spool(tmp_path / "spool", telemetry)
    spool.append([rows_module.encode(r)[:2] for r in gpu_rows(40)])

    def crash(_segment: str) -> None:
        raise KeyboardInterrupt("killed after commit")

    crashing = StoreWriter(engine, telemetry, spool=spool)
    monkeypatch.setattr(spool, "remove", crash)
    with pytest.raises(KeyboardInterrupt):
        crashing.flush()
    assert count(engine) == 40
    monkeypatch.undo()
    after_restart = StoreWriter(engine, Telemetry("h1"), spool=Spool(tmp_path / "spool", telemetry))
    assert after_restart.flush() == 0
    assert count(engine) == 40
    assert spool.segments() == []


def test_stop_returns_by_its_deadline_while_postgres_is_frozen_and_the_rows_are_replayed_once(
        pg: tuple[PrivatePostgres, str], tmp_path: Path) -> None:
    server, url = pg
    engine = open_engine(url, FAST)
    telemetry = Telemetry("h1")
    writer = _writer(engine, tmp_path / "spool", telemetry, flush_interval_s=0.1)
    writer.offer(gpu_rows(10))
    assert writer.flush() == 10
    server.freeze()
    writer.offer(gpu_rows(200, start=10))
    writer.start()
    stopper = threading.Thread(target=writer.stop, kwargs={"timeout_s": 2.0})
    stopper.start()
    stopper.join(timeout=15)  # generous: stop must return, whatever the frozen server does
    assert not stopper.is_alive()
    assert writer.pending() == 0
    assert telemetry.dropped_count("store_error") == 0
    server.thaw()  # the hung flush may now commit: its marker keeps the replay from repeating it
    engine2 = open_engine(url, FAST)
    replayer = _writer(engine2, tmp_path / "spool", Telemetry("h1"))
    for _ in range(3):
        replayer.flush()
    assert count(engine2) == 210
    assert Spool(tmp_path / "spool", telemetry).segments() == []
    engine.dispose()
    engine2.dispose()


def test_a_connection_to_a_frozen_server_gives_up_after_connect_timeout(pg: tuple[PrivatePostgres, str]) -> None:
    server, url = pg
    engine = open_engine(url, FAST)
    server.freeze()
    writer = StoreWriter(engine, Telemetry("h1"))
    writer.offer(gpu_rows(5))
    done = threading.Event()

    def flush() -> None:
        writer.flush()
        done.set()

    threading.Thread(target=flush, daemon=True).start()
    assert done.wait(timeout=20)  # without connect_timeout this never returns
    assert writer.pending() == 5 and writer.last_error is not None
    server.thaw()
    assert writer.flush() == 5
    engine.dispose()


def test_failing_flushes_back_off_log_at_a_rate_limit_and_do_not_reconvert_the_queue(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'no-schema.db'}")  # not migrated: every insert fails
    clock = FakeClock()
    writer = StoreWriter(engine, Telemetry("h1"), flush_interval_s=1.0, backoff_max_s=30.0, clock=clock)
    writer.offer(gpu_rows(1000))
    calls = {"to_row": 0}
    original = rows_module.to_row

    def counting(item: object) -> object:
        calls["to_row"] += 1
        return original(item)  # type: ignore[arg-type]

    monkeypatch.setattr(rows_module, "to_row", counting)
    delays = []
    with caplog.at_level(logging.ERROR, logger="agent.store.writer"):
        for _ in range(10):
            assert writer.flush() == 0
            delays.append(writer._next_attempt - clock.now)
            clock.now += 7.0
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    assert calls["to_row"] == 0
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2  # the first failure, then one line after a minute with the count
    assert "still unwritable" in lines[1] and "9 more failed attempts" in lines[1]
    upgrade(engine)
    assert writer.flush() == 1000


async def test_healthz_answers_503_with_the_reason_while_the_store_is_unwritable(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    from agent.exporters.snapshot import Snapshot
    from agent.runner import Runner

    engine = open_engine(f"sqlite:///{tmp_path / 'no-schema.db'}")
    clock = FakeClock()
    telemetry = Telemetry("h1")
    writer = StoreWriter(engine, telemetry, unhealthy_after_s=60.0, clock=clock)
    runner = Runner(collectors=[], writer=writer, snapshot=Snapshot(),
                    telemetry=telemetry, registry=CollectorRegistry(), metrics_port=None)
    writer.offer(gpu_rows(3))
    writer.flush()
    response = await runner._health(None)  # type: ignore[arg-type]
    assert response.status == 200
    clock.now += 61
    response = await runner._health(None)  # type: ignore[arg-type]
    body = json.loads(response.body)  # type: ignore[arg-type]
    assert response.status == 503 and body["status"] == "unhealthy"
    assert len(body["reasons"]) == 1 and body["reasons"][0].startswith("store unwritable for 61 s")
    upgrade(engine)
    writer.flush()
    response = await runner._health(None)  # type: ignore[arg-type]
    assert response.status == 200


async def test_a_store_job_stuck_on_the_database_runs_on_a_daemon_thread_and_never_holds_the_exit() -> None:
    from agent.wiring import _store_thread

    release = threading.Event()
    seen: dict[str, bool] = {}

    def stuck() -> str:
        seen["daemon"] = threading.current_thread().daemon
        release.wait(timeout=10)
        return "done"

    def failing() -> None:
        raise ValueError("refused")

    task = asyncio.ensure_future(_store_thread(stuck))
    await asyncio.sleep(0.05)
    assert seen == {"daemon": True}  # asyncio.to_thread's workers are joined at interpreter exit
    release.set()
    assert await task == "done"
    with pytest.raises(ValueError, match="refused"):
        await _store_thread(failing)


def test_a_locked_sqlite_database_is_retried_not_dropped(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "locked.db"
    engine = open_engine(f"sqlite:///{path}", Timeouts(busy_timeout_s=0.1))
    upgrade(engine)
    telemetry = Telemetry("h1")
    writer = StoreWriter(engine, telemetry)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    writer.offer(gpu_rows(20))
    assert writer.flush() == 0
    assert writer.pending() == 20 and "locked" in (writer.last_error or "")
    assert telemetry.dropped_count("rejected") == 0
    other.execute("ROLLBACK")
    other.close()
    assert writer.flush() == 20 and count(engine) == 20


def test_a_writer_whose_kept_connection_died_in_a_server_restart_writes_its_next_flush_at_once(
        pg: tuple[PrivatePostgres, str], tmp_path: Path) -> None:
    # the writer keeps its connection between flushes (no pool ping per flush): a dead one is
    # replaced within the flush, without a failure, a backoff or a row stored twice
    server, url = pg
    engine = open_engine(url, FAST)
    telemetry = Telemetry("h1")
    writer = _writer(engine, tmp_path / "spool", telemetry)
    connects: list[object] = []
    event.listen(engine, "connect", lambda *_a: connects.append(1))
    writer.offer(gpu_rows(10))
    assert writer.flush() == 10
    writer.offer(gpu_rows(5, start=100))
    assert writer.flush() == 5 and len(connects) == 1  # one connection for both flushes
    server.stop()
    server.start()
    writer.offer(gpu_rows(5, start=10))
    assert writer.flush() == 5
    assert len(connects) == 2  # the dead one replaced once
    assert count(engine) == 20
    assert _points(telemetry)["campwatch_store_up"] == 1.0
    assert writer.last_error is None and writer.health() == (True, "ok")
    engine.dispose()
