from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from agent.catalog import CATALOG
from agent.errors import CollectorError, StoreError
from agent.exporters.prometheus import build_registry
from agent.exporters.snapshot import Snapshot
from agent.runner import Runner
from agent.samples import Collected, GpuSample, Point, labels
from agent.store.db import open_store
from agent.store.schema import gpu_samples
from agent.store.writer import StoreWriter
from agent.telemetry import Telemetry


class Ticking:
    name = "fake-gpu"
    interval_s = 0.05

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    async def collect(self) -> Collected:
        self.calls += 1
        sample = GpuSample(ts=datetime.now(UTC), host="h1", gpu_index=0, uuid="GPU-1", model="H100", up=True,
                           values={"utilization_ratio": 0.25, "power_watts": 123.0})
        points = (Point("campwatch_gpu_utilization_ratio", 0.25,
                        labels(host="h1", gpu=0, uuid="GPU-1", model="H100")),)
        return Collected("gpu", (sample,), points)

    async def close(self) -> None:
        self.closed = True


class Failing:
    name = "broken"
    interval_s = 0.05

    def __init__(self) -> None:
        self.calls = 0

    async def collect(self) -> Collected:
        self.calls += 1
        raise CollectorError("broken", "connection refused")

    async def close(self) -> None:
        pass


class Crashing(Failing):
    name = "buggy"

    async def collect(self) -> Collected:
        self.calls += 1
        raise ZeroDivisionError("bug")


async def test_failing_collectors_are_isolated_and_reported_while_others_store_and_expose(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'c.db'}", upgrade=True)
    telemetry = Telemetry("h1")
    snapshot = Snapshot()
    good, bad, buggy = Ticking(), Failing(), Crashing()
    runner = Runner(collectors=[good, bad, buggy],
                    writer=StoreWriter(engine, telemetry, flush_interval_s=0.05),
                    snapshot=snapshot, telemetry=telemetry, registry=build_registry(snapshot, CATALOG),
                    metrics_port=0)
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.6)
    url = f"http://127.0.0.1:{runner.metrics_bound_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        page = await response.text()
    runner.stop()
    await task

    families = {f.name: f for f in text_string_to_metric_families(page)}
    util = families["campwatch_gpu_utilization_ratio"].samples[0]
    assert util.value == 0.25 and util.labels["uuid"] == "GPU-1"
    up = {s.labels["collector"]: s.value for s in families["campwatch_collector_up"].samples}
    assert up == {"fake-gpu": 1.0, "broken": 0.0, "buggy": 0.0}
    errors = {s.labels["collector"]: s.value for s in families["campwatch_collector_errors"].samples}
    assert errors["broken"] >= 3 and errors["buggy"] >= 3 and errors["fake-gpu"] == 0
    assert good.calls >= 5 and good.closed
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(gpu_samples)).scalar()
    assert stored == good.calls  # the final flush at shutdown lost nothing


async def test_gap_rows_of_a_failed_scrape_replace_stale_points(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'c.db'}", upgrade=True)
    telemetry = Telemetry("h1")
    snapshot = Snapshot()
    snapshot.replace("engine:x", [Point("campwatch_engine_requests_running", 5.0)])

    class GapOnFailure(Failing):
        name = "engine:x"

        async def collect(self) -> Collected:
            raise CollectorError(self.name, "timeout",
                                 collected=Collected("engine:x", (), (Point("campwatch_engine_up", 0.0),)))

    runner = Runner(collectors=[GapOnFailure()], writer=StoreWriter(engine, telemetry),
                    snapshot=snapshot, telemetry=telemetry, registry=build_registry(snapshot, CATALOG),
                    metrics_port=None)
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.1)
    runner.stop()
    await task
    assert [p.name for p in snapshot.points() if p.name.startswith("campwatch_engine")] == ["campwatch_engine_up"]


async def test_a_service_that_never_stops_is_left_behind_at_the_grace_and_the_last_flush_still_runs(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'c.db'}", upgrade=True)
    telemetry = Telemetry("h1")
    snapshot = Snapshot()
    good = Ticking()
    given: list[float] = []

    async def start() -> None:
        return None

    async def hang(timeout_s: float) -> None:
        given.append(timeout_s)
        await asyncio.Event().wait()  # ignores the time it was given

    runner = Runner(collectors=[good], writer=StoreWriter(engine, telemetry, flush_interval_s=0.05),
                    snapshot=snapshot, telemetry=telemetry, registry=build_registry(snapshot, CATALOG),
                    metrics_port=None, services=[("stuck", start, hang)], shutdown_grace_s=1.0)
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.3)
    runner.stop()
    await asyncio.wait_for(task, timeout=10)  # a hang guard, not a timing assertion
    assert len(given) == 1 and 0 < given[0] <= 0.8  # the grace less the writer's 20 % reserve
    assert "stopping stuck took longer than the shutdown grace" in caplog.text
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(gpu_samples)).scalar()
    assert stored == good.calls  # the writer still had its share of the grace


def _agent_values(telemetry: Telemetry, name: str) -> dict[str, float]:
    return {dict(p.labels)["collector"]: p.value for p in telemetry.points() if p.name == name}


async def test_a_cost_job_raising_a_store_error_shows_up_0_for_its_part_and_recovers_to_1(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'c.db'}", upgrade=True)
    telemetry = Telemetry("h1")
    snapshot = Snapshot()
    seen: list[tuple[dict[str, float], dict[str, float], list[str]]] = []
    failed_twice, recovered = asyncio.Event(), asyncio.Event()
    runner: Runner

    async def cost() -> None:
        # what the job saw of the previous run's booking, before this run
        failing = json.loads((await runner._health(None)).text)["failing"]  # type: ignore[arg-type]
        seen.append((_agent_values(telemetry, "campwatch_collector_up"),
                     _agent_values(telemetry, "campwatch_collector_errors_total"), failing))
        if len(seen) <= 2:
            if len(seen) == 2:
                failed_twice.set()
            raise StoreError("reading cost measures from sqlite:///c.db: database is locked")
        recovered.set()

    runner = Runner(collectors=[], writer=StoreWriter(engine, telemetry), snapshot=snapshot, telemetry=telemetry,
                    registry=build_registry(snapshot, CATALOG), metrics_port=None, periodic=[("cost", 0.01, cost)])
    with caplog.at_level(logging.INFO, logger="agent.runner"):
        task = asyncio.create_task(runner.run())
        await asyncio.wait_for(recovered.wait(), timeout=10)  # a hang guard, not a timing assertion
        await asyncio.sleep(0)  # the run that set `recovered` is booked before the loop moves on
        runner.stop()
        await asyncio.wait_for(task, timeout=10)
    assert failed_twice.is_set()
    assert seen[1] == ({"cost": 0.0}, {"cost": 1.0}, ["cost"])  # after the first failure
    assert seen[2] == ({"cost": 0.0}, {"cost": 2.0}, ["cost"])  # the second one is counted, not logged again
    assert _agent_values(telemetry, "campwatch_collector_up") == {"cost": 1.0}
    messages = [r.getMessage() for r in caplog.records if r.name == "agent.runner"]
    assert [m for m in messages if m.startswith("cost ")] == [
        "cost failed: reading cost measures from sqlite:///c.db: database is locked", "cost recovered"]
    assert not any(r.exc_info for r in caplog.records if r.name == "agent.runner")  # a CampwatchError: one line


async def test_a_service_that_cannot_start_is_booked_like_any_failed_part(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'c.db'}", upgrade=True)
    telemetry = Telemetry("h1")
    snapshot = Snapshot()

    async def start() -> None:
        raise OSError("no such device")

    async def stop(_timeout_s: float) -> None:
        raise AssertionError("a service that did not start is not stopped")

    runner = Runner(collectors=[], writer=StoreWriter(engine, telemetry), snapshot=snapshot, telemetry=telemetry,
                    registry=build_registry(snapshot, CATALOG), metrics_port=None, services=[("otlp", start, stop)])
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0)
    health = json.loads((await runner._health(None)).text)  # type: ignore[arg-type]
    runner.stop()
    await asyncio.wait_for(task, timeout=10)
    assert _agent_values(telemetry, "campwatch_collector_up") == {"otlp": 0.0}
    assert health["failing"] == ["otlp"]


async def test_a_part_that_could_not_be_built_is_failing_from_the_start(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'c.db'}", upgrade=True)
    telemetry = Telemetry("h1")
    snapshot = Snapshot()
    runner = Runner(collectors=[], writer=StoreWriter(engine, telemetry), snapshot=snapshot, telemetry=telemetry,
                    registry=build_registry(snapshot, CATALOG), metrics_port=None, off_at_start=["gpu"])
    health = json.loads((await runner._health(None)).text)  # type: ignore[arg-type]
    assert _agent_values(telemetry, "campwatch_collector_up") == {"gpu": 0.0}
    assert _agent_values(telemetry, "campwatch_collector_errors_total") == {"gpu": 1.0}
    assert health["failing"] == ["gpu"]
async def test_the_runner_runs_with_the_configured_gil_switch_interval_and_the_start_frozen_out_of_the_gc(
        tmp_path: Path) -> None:
    import gc
    import sys

    from agent.config import Settings

    engine = open_store(f"sqlite:///{tmp_path / 'c.db'}", upgrade=True)
    telemetry = Telemetry("h1")
    snapshot = Snapshot()
    seen: list[float] = []

    frozen: list[int] = []

    async def start() -> None:
        seen.append(sys.getswitchinterval())
        frozen.append(gc.get_freeze_count())

    async def stop(timeout_s: float) -> None:
        return None

    before = sys.getswitchinterval()
    assert Settings(switch_interval_s=0.002).switch_interval_s == 0.002
    configured = 0.002
    assert before != configured
    runner = Runner(collectors=[], writer=StoreWriter(engine, telemetry, flush_interval_s=0.05),
                    snapshot=snapshot, telemetry=telemetry, registry=build_registry(snapshot, CATALOG),
                    metrics_port=None, services=[("probe", start, stop)], switch_interval_s=configured)
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.1)
    runner.stop()
    await asyncio.wait_for(task, timeout=10)  # a hang guard, not a timing assertion
    assert seen == [configured]
    assert frozen[0] > 10_000  # the objects made before run() (modules, tables) are out of the collector's scans
    assert sys.getswitchinterval() == before  # both undone when run() ends
    assert gc.get_freeze_count() == 0


async def test_the_heap_is_released_after_each_periodic_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'c.db'}", upgrade=True)
    telemetry = Telemetry("h1")
    snapshot = Snapshot()
    order: list[str] = []
    done = asyncio.Event()
    monkeypatch.setattr("agent.runner.release_free_heap", lambda: order.append("trim"))

    async def cost() -> None:
        order.append("cost")
        if order.count("cost") == 3:
            done.set()

    runner = Runner(collectors=[], writer=StoreWriter(engine, telemetry), snapshot=snapshot, telemetry=telemetry,
                    registry=build_registry(snapshot, CATALOG), metrics_port=None, periodic=[("cost", 0.01, cost)])
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(done.wait(), timeout=10)  # a hang guard, not a timing assertion
    await asyncio.sleep(0)
    runner.stop()
    await asyncio.wait_for(task, timeout=10)
    assert order[:6] == ["cost", "trim", "cost", "trim", "cost", "trim"]
    engine.dispose()
