"""Builds a Runner from settings: every part is chosen here, explicitly, from the config."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from agent.catalog import ALL_METRICS, CATALOG
from agent.collectors.base import Collector
from agent.collectors.gpu.driver import GpuDriver
from agent.config import Settings
from agent.errors import DriftError, NvmlUnavailable, StoreError
from agent.exporters.prometheus import build_registry
from agent.exporters.snapshot import Snapshot
from agent.exporters.web_auth import metrics_auth, tls_context
from agent.runner import Periodic, Runner, Service
from agent.store.db import Timeouts, open_engine
from agent.store.maintenance import maintain
from agent.store.revisions import at_head
from agent.store.spool import Spool, spool_dir_for
from agent.store.writer import StoreWriter
from agent.telemetry import Telemetry

if TYPE_CHECKING:
    from agent.capture.proxy import ProxyServer

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Parts:
    """What build_runner made, for callers (the demo) that want to look inside."""

    runner: Runner
    engine: Engine
    writer: StoreWriter
    snapshot: Snapshot
    telemetry: Telemetry
    registry: CollectorRegistry
    proxy: ProxyServer | None


async def _store_thread(fn: Callable[[], T]) -> T:
    """Run a store job off the event loop on a daemon thread: unlike asyncio.to_thread, a call stuck
    on a database that does not answer (a frozen server: no timeout fires) never keeps the process
    from exiting at shutdown."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(finish: Callable[[], None]) -> None:
        if not future.done():
            finish()

    def run() -> None:
        finish: Callable[[], None]
        try:
            finish = functools.partial(future.set_result, fn())
        except BaseException as exc:  # handed to the awaiting task
            finish = functools.partial(future.set_exception, exc)
        with contextlib.suppress(RuntimeError):  # the loop is gone: the process is exiting
            loop.call_soon_threadsafe(settle, finish)

    threading.Thread(target=run, name="campwatch-store-job", daemon=True).start()
    return await future


def _gpu_collectors(settings: Settings, gpu_driver: GpuDriver | None, off: list[str]) -> list[Collector]:
    """The GPU collector; without NVML none, and "gpu" is added to `off` (booked as failed)."""
    if not settings.gpu.enabled:
        return []
    from agent.collectors.gpu.collector import build_gpu_collector

    try:
        return [build_gpu_collector(settings.gpu, settings.host, driver=gpu_driver)]
    except NvmlUnavailable as exc:
        log.error("GPU telemetry is off: %s", exc)
        off.append("gpu")
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


def build_runner(settings: Settings, *, gpu_driver: GpuDriver | None = None, simulated: bool = False) -> Parts:
    engine = open_engine(settings.store.url.get_secret_value(), Timeouts.of(settings.store))
    migrator = _Migrator(engine)
    try:
        migrator.ensure()
    except StoreError as exc:
        log.error("%s; rows are queued and migration is retried", exc)
    telemetry = Telemetry(settings.host)
    snapshot = Snapshot(settings.host)
    registry = build_registry(snapshot, CATALOG)
    store = settings.store
    spool = Spool(spool_dir_for(store.spool_dir, engine.url), telemetry, max_bytes=store.spool_max_bytes)
    writer = StoreWriter(engine, telemetry, flush_interval_s=store.flush_interval_s,
                         queue_max_rows=store.queue_max_rows, spool=spool, spool_after_s=store.spool_after_s,
                         spool_queue_fraction=store.spool_queue_fraction, backoff_max_s=store.backoff_max_s,
                         unhealthy_after_s=store.unhealthy_after_s)
    off: list[str] = []
    collectors = _gpu_collectors(settings, gpu_driver, off) + _engine_collectors(settings, simulated)

    async def maintenance() -> None:
        def work() -> None:
            migrator.ensure()
            maintain(engine, settings.host, raw_days=settings.store.raw_retention_days,
                     rollup_days=settings.store.rollup_retention_days)
        await _store_thread(work)

    periodic: list[tuple[str, float, Periodic]] = [("maintenance", settings.store.maintenance_interval_s,
                                                    maintenance)]
    periodic += _cost_job(settings, engine, snapshot, migrator)
    periodic += _drift_job(settings, engine, snapshot)
    services: list[Service] = []
    if settings.otlp.endpoint:
        services.append(_otlp(settings, snapshot))
    proxy = None
    if settings.proxy.listen:
        from agent.capture.proxy import ProxyServer

        proxy = ProxyServer(settings.proxy, settings.capture, settings.host, writer, simulated=simulated)
        snapshot.attach("proxy", proxy.points)
        services.append(("proxy", proxy.start, proxy.stop))
    runner = Runner(
        collectors=collectors, writer=writer, snapshot=snapshot,
        telemetry=telemetry, registry=registry, metrics_host=settings.metrics.host,
        metrics_port=settings.metrics.port if settings.metrics.enabled else None, periodic=periodic,
        services=services, shutdown_grace_s=settings.shutdown_grace_s, off_at_start=off,
        switch_interval_s=settings.switch_interval_s,
        metrics_auth=metrics_auth(settings.metrics) if settings.metrics.enabled else None,
        metrics_tls=tls_context(settings.metrics) if settings.metrics.enabled else None,
    )
    return Parts(runner, engine, writer, snapshot, telemetry, registry, proxy)


def _cost_job(settings: Settings, engine: Engine, snapshot: Snapshot,
              migrator: _Migrator) -> list[tuple[str, float, Periodic]]:
    from agent.cost.report import build_report, report_points

    async def cost() -> None:
        def work() -> None:
            migrator.ensure()
            # refresh=True: the agent stores this host's hourly measures (reports only read them)
            report = build_report(engine, settings.cost, timedelta(days=30), settings.host, refresh=True)
            snapshot.replace("cost", report_points(report))
        await _store_thread(work)

    return [("cost", settings.cost.interval_s, cost)]


def _drift_job(settings: Settings, engine: Engine, snapshot: Snapshot) -> list[tuple[str, float, Periodic]]:
    """Drift checks run in a child process (Evidently stays out of the agent). The first tick only
    publishes the latest stored results; the first check runs one interval after start. A failed
    check raises DriftError (the runner books it); the results stored so far are published anyway."""
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
        failure: DriftError | None = None
        if started:
            try:
                await worker.check()
            except DriftError as exc:
                failure = exc
        started = True
        snapshot.replace("drift", await _store_thread(functools.partial(drift_points, engine, settings.host)))
        if failure is not None:
            raise failure

    return [("drift", settings.drift.interval_s, drift)]


def _otlp(settings: Settings, snapshot: Snapshot) -> Service:
    """OTLP export reads the same snapshot (live sources included) on its own interval."""
    from agent.exporters.otlp import OtlpExport

    otlp = OtlpExport(snapshot, settings.host, endpoint=settings.otlp.endpoint, interval_s=settings.otlp.interval_s,
                      headers={k: v.get_secret_value() for k, v in settings.otlp.headers.items()},
                      specs=ALL_METRICS)

    async def otlp_start() -> None:
        otlp.start()

    async def otlp_stop(timeout_s: float) -> None:
        await asyncio.to_thread(otlp.shutdown, timeout_s)

    return ("otlp", otlp_start, otlp_stop)
