from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from agent.errors import CollectorError
from agent.exporters.prometheus import build_registry
from agent.exporters.snapshot import Snapshot
from agent.runner import Runner
from agent.samples import Collected, GpuSample, Point, labels
from agent.store.db import open_engine
from agent.store.migrate import upgrade
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


async def test_failing_collectors_are_isolated_and_reported_while_others_store_and_expose(tmp_path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    telemetry = Telemetry("h1")
    snapshot = Snapshot()
    good, bad, buggy = Ticking(), Failing(), Crashing()
    runner = Runner(host="h1", collectors=[good, bad, buggy],
                    writer=StoreWriter(engine, telemetry, flush_interval_s=0.05), engine=engine,
                    snapshot=snapshot, telemetry=telemetry, registry=build_registry(snapshot),
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


async def test_gap_rows_of_a_failed_scrape_replace_stale_points(tmp_path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    telemetry = Telemetry("h1")
    snapshot = Snapshot()
    snapshot.replace("engine:x", [Point("campwatch_engine_requests_running", 5.0)])

    class GapOnFailure(Failing):
        name = "engine:x"

        async def collect(self) -> Collected:
            exc = CollectorError(self.name, "timeout")
            exc.collected = Collected("engine:x", (), (Point("campwatch_engine_up", 0.0),))  # type: ignore[attr-defined]
            raise exc

    runner = Runner(host="h1", collectors=[GapOnFailure()], writer=StoreWriter(engine, telemetry), engine=engine,
                    snapshot=snapshot, telemetry=telemetry, registry=build_registry(snapshot), metrics_port=None)
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.1)
    runner.stop()
    await task
    assert [p.name for p in snapshot.points() if p.name.startswith("campwatch_engine")] == ["campwatch_engine_up"]


async def test_a_service_that_never_stops_is_left_behind_at_the_grace_and_the_last_flush_still_runs(
        tmp_path, caplog) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    telemetry = Telemetry("h1")
    snapshot = Snapshot()
    good = Ticking()
    given: list[float] = []

    async def start() -> None:
        return None

    async def hang(timeout_s: float) -> None:
        given.append(timeout_s)
        await asyncio.Event().wait()  # ignores the time it was given

    runner = Runner(host="h1", collectors=[good], writer=StoreWriter(engine, telemetry, flush_interval_s=0.05),
                    engine=engine, snapshot=snapshot, telemetry=telemetry, registry=build_registry(snapshot),
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


async def test_the_runner_runs_with_the_configured_gil_switch_interval_and_the_start_frozen_out_of_the_gc(
        tmp_path) -> None:
    import gc
    import sys

    from agent.config import Settings

    engine = open_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
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
    runner = Runner(host="h1", collectors=[], writer=StoreWriter(engine, telemetry, flush_interval_s=0.05),
                    engine=engine, snapshot=snapshot, telemetry=telemetry, registry=build_registry(snapshot),
                    metrics_port=None, services=[("probe", start, stop)], switch_interval_s=configured)
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.1)
    runner.stop()
    await asyncio.wait_for(task, timeout=10)  # a hang guard, not a timing assertion
    assert seen == [configured]
    assert frozen[0] > 10_000  # the objects made before run() (modules, tables) are out of the collector's scans
    assert sys.getswitchinterval() == before  # both undone when run() ends
    assert gc.get_freeze_count() == 0
