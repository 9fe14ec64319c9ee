"""Builds a Runner from settings: every part is chosen here, explicitly, from the config."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from agent.collectors.base import Collector
from agent.config import Settings
from agent.errors import NvmlUnavailable, StoreError
from agent.exporters.prometheus import build_registry
from agent.exporters.snapshot import Snapshot
from agent.runner import Runner
from agent.store.db import open_engine
from agent.store.maintenance import maintain
from agent.store.migrate import upgrade
from agent.store.writer import StoreWriter
from agent.telemetry import Telemetry

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """What build_runner made, for callers (the demo) that want to look inside."""

    runner: Runner
    engine: Engine
    writer: StoreWriter
    snapshot: Snapshot
    telemetry: Telemetry
    registry: CollectorRegistry
    proxy: Any | None


def _gpu_collectors(settings: Settings, telemetry: Telemetry, gpu_driver: Any | None) -> list[Collector]:
    if not settings.gpu.enabled:
        return []
    from agent.collectors.gpu.collector import build_gpu_collector

    try:
        return [build_gpu_collector(settings.gpu, settings.host, driver=gpu_driver)]
    except NvmlUnavailable as exc:
        log.error("GPU telemetry is off: %s", exc)
        telemetry.collector_failed("gpu", 0.0)
        return []


def _engine_collectors(settings: Settings, simulated: bool) -> list[Collector]:
    if not settings.engine.urls:
        return []
    from agent.collectors.engine.collector import build_engine_collectors

    return list(build_engine_collectors(settings.engine, settings.host, simulated=simulated))


class _Migrator:
    """Runs migrations at start; if the database is unreachable, retries from maintenance."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.done = False

    def ensure(self) -> bool:
        if not self.done:
            upgrade(self.engine)
            self.done = True
        return self.done


def build_runner(settings: Settings, *, gpu_driver: Any | None = None, simulated: bool = False) -> Parts:
    engine = open_engine(settings.store.url.get_secret_value())
    migrator = _Migrator(engine)
    try:
        migrator.ensure()
    except StoreError as exc:
        log.error("%s; rows are queued and migration is retried", exc)
    telemetry = Telemetry(settings.host)
    snapshot = Snapshot()
    registry = build_registry(snapshot)
    writer = StoreWriter(engine, telemetry, flush_interval_s=settings.store.flush_interval_s,
                         queue_max_rows=settings.store.queue_max_rows)
    collectors = _gpu_collectors(settings, telemetry, gpu_driver) + _engine_collectors(settings, simulated)

    async def maintenance() -> None:
        def work() -> None:
            migrator.ensure()
            maintain(engine, settings.host, raw_days=settings.store.raw_retention_days,
                     rollup_days=settings.store.rollup_retention_days)
        await asyncio.to_thread(work)

    periodic: list[tuple[str, float, Any]] = [("maintenance", settings.store.maintenance_interval_s, maintenance)]
    periodic += _cost_job(settings, engine, snapshot, migrator)
    periodic += _drift_job(settings, engine, snapshot, telemetry)
    services: list[tuple[str, Any, Any]] = []
    if settings.otlp.endpoint:
        periodic_otlp, service = _otlp(settings, snapshot, telemetry)
        periodic.append(periodic_otlp)
        services.append(service)
    proxy = None
    if settings.proxy.listen:
        from agent.capture.proxy import ProxyServer

        proxy = ProxyServer(settings.proxy, settings.capture, settings.host, writer, registry, simulated=simulated)
        services.append(("proxy", proxy.start, proxy.stop))
    runner = Runner(
        host=settings.host, collectors=collectors, writer=writer, engine=engine, snapshot=snapshot,
        telemetry=telemetry, registry=registry, metrics_host=settings.metrics.host,
        metrics_port=settings.metrics.port if settings.metrics.enabled else None, periodic=periodic,
        services=services,
    )
    return Parts(runner, engine, writer, snapshot, telemetry, registry, proxy)


def _cost_job(settings: Settings, engine: Engine, snapshot: Snapshot,
              migrator: _Migrator) -> list[tuple[str, float, Any]]:
    from agent.cost.report import build_report, report_points

    async def cost() -> None:
        def work() -> None:
            migrator.ensure()
            # refresh=True: the agent stores this host's hourly measures (reports only read them)
            report = build_report(engine, settings.cost, timedelta(days=30), settings.host, refresh=True)
            snapshot.replace("cost", report_points(report))
        await asyncio.to_thread(work)

    return [("cost", settings.cost.interval_s, cost)]


def _drift_job(settings: Settings, engine: Engine, snapshot: Snapshot,
               telemetry: Telemetry) -> list[tuple[str, float, Any]]:
    """Drift checks run in a child process (Evidently stays out of the agent). The first tick only
    publishes the latest stored results; the first check runs one interval after start."""
    if not settings.drift.enabled:
        return []
    from agent.drift.points import drift_points
    from agent.drift.worker import DriftWorker

    worker = DriftWorker(settings.store.url.get_secret_value(), settings.drift, settings.host,
                         refusal_phrases=settings.capture.refusal_phrases)
    started = False

    async def drift() -> None:
        nonlocal started
        if started:
            await worker.tick()
            if worker.last_error:
                telemetry.collector_failed("drift", worker.last_duration_s or 0.0)
            else:
                telemetry.collector_ok("drift", worker.last_duration_s or 0.0)
        started = True
        snapshot.replace("drift", await asyncio.to_thread(drift_points, engine, settings.host))

    return [("drift", settings.drift.interval_s, drift)]


def _otlp(settings: Settings, snapshot: Snapshot,
          telemetry: Telemetry) -> tuple[tuple[str, float, Any], tuple[str, Any, Any]]:
    """OTLP export reads the same snapshot; the agent's own points are refreshed for it every 5 s
    (Prometheus scrapes refresh them on demand)."""
    from agent.exporters.otlp import OtlpExport

    otlp = OtlpExport(snapshot, settings.host, endpoint=settings.otlp.endpoint, interval_s=settings.otlp.interval_s,
                      headers={k: v.get_secret_value() for k, v in settings.otlp.headers.items()})

    async def refresh_agent_points() -> None:
        snapshot.replace("agent", telemetry.points())

    async def no_start() -> None:
        return None

    async def otlp_stop() -> None:
        await asyncio.to_thread(otlp.shutdown)

    return ("agent-telemetry", 5.0, refresh_agent_points), ("otlp", no_start, otlp_stop)
