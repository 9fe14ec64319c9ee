"""Builds a Runner from settings: every part is chosen here, explicitly, from the config."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
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
from agent.exporters.web_auth import metrics_auth, tls_context
from agent.runner import Runner
from agent.store.db import Timeouts, open_engine
from agent.store.maintenance import maintain
from agent.store.revisions import at_head
from agent.store.spool import Spool, spool_dir_for
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


async def _store_thread(fn: Any, *args: Any) -> Any:
    """Run a store job off the event loop on a daemon thread: unlike asyncio.to_thread, a call stuck
    on a database that does not answer (a frozen server: no timeout fires) never keeps the process
    from exiting at shutdown."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if not future.done():
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    def run() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:  # handed to the awaiting task
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: the process is exiting
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="campwatch-store-job", daemon=True).start()
    return await future


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
            if not at_head(self.engine):  # Alembic is loaded only when there is something to migrate
                from agent.store.migrate import upgrade

                upgrade(self.engine)
            self.done = True
        return self.done


def build_runner(settings: Settings, *, gpu_driver: Any | None = None, simulated: bool = False) -> Parts:
    engine = open_engine(settings.store.url.get_secret_value(), Timeouts.of(settings.store))
    migrator = _Migrator(engine)
    try:
        migrator.ensure()
    except StoreError as exc:
        log.error("%s; rows are queued and migration is retried", exc)
    telemetry = Telemetry(settings.host)
    snapshot = Snapshot(settings.host)
    registry = build_registry(snapshot)
    store = settings.store
    spool = Spool(spool_dir_for(store.spool_dir, engine.url), telemetry, max_bytes=store.spool_max_bytes)
    writer = StoreWriter(engine, telemetry, flush_interval_s=store.flush_interval_s,
                         queue_max_rows=store.queue_max_rows, spool=spool, spool_after_s=store.spool_after_s,
                         spool_queue_fraction=store.spool_queue_fraction, backoff_max_s=store.backoff_max_s,
                         unhealthy_after_s=store.unhealthy_after_s)
    collectors = _gpu_collectors(settings, telemetry, gpu_driver) + _engine_collectors(settings, simulated)

    async def maintenance() -> None:
        def work() -> None:
            migrator.ensure()
            maintain(engine, settings.host, raw_days=settings.store.raw_retention_days,
                     rollup_days=settings.store.rollup_retention_days)
        await _store_thread(work)

    periodic: list[tuple[str, float, Any]] = [("maintenance", settings.store.maintenance_interval_s, maintenance)]
    periodic += _cost_job(settings, engine, snapshot, migrator)
    periodic += _drift_job(settings, engine, snapshot, telemetry)
    services: list[tuple[str, Any, Any]] = []
    if settings.otlp.endpoint:
        services.append(_otlp(settings, snapshot))
    proxy = None
    if settings.proxy.listen:
        from agent.capture.proxy import ProxyServer

        proxy = ProxyServer(settings.proxy, settings.capture, settings.host, writer, simulated=simulated)
        snapshot.attach("proxy", proxy.points)
        services.append(("proxy", proxy.start, proxy.stop))
    runner = Runner(
        host=settings.host, collectors=collectors, writer=writer, engine=engine, snapshot=snapshot,
        telemetry=telemetry, registry=registry, metrics_host=settings.metrics.host,
        metrics_port=settings.metrics.port if settings.metrics.enabled else None, periodic=periodic,
        services=services, shutdown_grace_s=settings.shutdown_grace_s, switch_interval_s=settings.switch_interval_s,
        metrics_auth=metrics_auth(settings.metrics) if settings.metrics.enabled else None,
        metrics_tls=tls_context(settings.metrics) if settings.metrics.enabled else None,
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
        await _store_thread(work)

    return [("cost", settings.cost.interval_s, cost)]


def _drift_job(settings: Settings, engine: Engine, snapshot: Snapshot,
               telemetry: Telemetry) -> list[tuple[str, float, Any]]:
    """Drift checks run in a child process (Evidently stays out of the agent). The first tick only
    publishes the latest stored results; the first check runs one interval after start."""
    if not settings.drift.enabled:
        return []
    from agent.extras import missing_modules

    missing = missing_modules("drift")
    if missing:  # said once here; no worker is started, so no failing check every interval
        log.warning("drift checks are off: drift.enabled is true but the 'drift' extra is not installed "
                    "(missing: %s); install it with pip install 'campwatch[drift]'", ", ".join(missing))
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
        snapshot.replace("drift", await _store_thread(drift_points, engine, settings.host))

    return [("drift", settings.drift.interval_s, drift)]


def _otlp(settings: Settings, snapshot: Snapshot) -> tuple[str, Any, Any]:
    """OTLP export reads the same snapshot (live sources included) on its own interval."""
    from agent.exporters.otlp import OtlpExport

    otlp = OtlpExport(snapshot, settings.host, endpoint=settings.otlp.endpoint, interval_s=settings.otlp.interval_s,
                      headers={k: v.get_secret_value() for k, v in settings.otlp.headers.items()})

    async def otlp_start() -> None:
        otlp.start()

    async def otlp_stop(timeout_s: float) -> None:
        await asyncio.to_thread(otlp.shutdown, timeout_s)

    return ("otlp", otlp_start, otlp_stop)
