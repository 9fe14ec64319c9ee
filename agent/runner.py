"""The schedule: ticks each collector on its own interval, hands rows to the store writer and points
to the snapshot, serves /metrics, runs store maintenance, and shuts down cleanly (last flush)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import Engine

from agent.collectors.base import Collector
from agent.errors import CampwatchError, CollectorError
from agent.exporters.snapshot import Snapshot
from agent.samples import Collected
from agent.store.writer import StoreWriter
from agent.telemetry import Telemetry

log = logging.getLogger(__name__)

Periodic = Callable[[], Awaitable[None]]


@dataclass
class Runner:
    """Owns the parts `agent.wiring.build_runner` assembled and runs them until `stop()`."""

    host: str
    collectors: list[Collector]
    writer: StoreWriter
    engine: Engine
    snapshot: Snapshot
    telemetry: Telemetry
    registry: CollectorRegistry
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 9400
    periodic: Sequence[tuple[str, float, Periodic]] = field(default_factory=list)
    services: list[tuple[str, Callable[[], Awaitable[object]], Callable[[], Awaitable[None]]]] = field(
        default_factory=list)
    """(name, start, stop) pairs, e.g. the proxy; a service that fails to start is reported, not fatal."""
    metrics_bound_port: int | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _failing: set[str] = field(default_factory=set)

    def stop(self) -> None:
        self._stop.set()

    async def _tick(self, collector: Collector) -> None:
        started = time.perf_counter()
        try:
            collected = await collector.collect()
        except CollectorError as exc:
            gap: Collected | None = getattr(exc, "collected", None)
            if gap is not None:
                self._accept(gap)
            self.telemetry.collector_failed(collector.name, time.perf_counter() - started)
            if collector.name not in self._failing:
                self._failing.add(collector.name)
                log.warning("collector %s failed: %s (will keep retrying)", collector.name, exc)
            return
        except Exception as exc:  # a bug in one collector must not stop the others
            self.telemetry.collector_failed(collector.name, time.perf_counter() - started)
            if collector.name not in self._failing:
                self._failing.add(collector.name)
                log.exception("collector %s crashed: %s", collector.name, exc)
            return
        if collector.name in self._failing:
            self._failing.discard(collector.name)
            log.info("collector %s recovered", collector.name)
        self._accept(collected)
        self.telemetry.collector_ok(collector.name, time.perf_counter() - started)

    def _accept(self, collected: Collected) -> None:
        if collected.rows:
            self.writer.offer(collected.rows, drop_reason="queue_full")
        self.snapshot.replace(collected.source, collected.points)

    async def _schedule(self, name: str, interval: float, job: Callable[[], Awaitable[None]]) -> None:
        """Fixed-rate ticks: a slow run delays the next one, never stacks them up."""
        next_at = time.monotonic()
        while not self._stop.is_set():
            await job()
            next_at += interval
            now = time.monotonic()
            if next_at < now:
                next_at = now
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=next_at - now)

    async def _guarded(self, name: str, job: Periodic) -> None:
        try:
            await job()
            if name in self._failing:
                self._failing.discard(name)
                log.info("%s recovered", name)
        except Exception as exc:
            if name not in self._failing:
                self._failing.add(name)
                log.warning("%s failed: %s", name, exc, exc_info=not isinstance(exc, CampwatchError))

    async def _metrics(self, _request: web.Request) -> web.Response:
        self.snapshot.replace("agent", self.telemetry.points())
        body = await asyncio.to_thread(generate_latest, self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health(self, _request: web.Request) -> web.Response:
        reasons = []
        store_ok, why = self.writer.health()
        if not store_ok:
            reasons.append(why)
        if reasons:
            return web.json_response({"status": "unhealthy", "reasons": reasons,
                                      "failing": sorted(self._failing)}, status=503)
        return web.json_response({"status": "ok", "failing": sorted(self._failing)})

    async def _start_metrics(self) -> web.AppRunner | None:
        if self.metrics_port is None:
            return None
        app = web.Application()
        app.add_routes([web.get("/metrics", self._metrics), web.get("/healthz", self._health)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.metrics_host, self.metrics_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            log.error("cannot serve /metrics on %s:%s: %s", self.metrics_host, self.metrics_port, exc)
            return None
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.metrics_bound_port = int(sockets[0].getsockname()[1]) if sockets else self.metrics_port
        log.info("serving /metrics on http://%s:%s/metrics", self.metrics_host, self.metrics_bound_port)
        return runner

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)

    async def run(self) -> None:
        self.writer.start()
        metrics_runner = await self._start_metrics()
        started_services = []
        for name, start, stop in self.services:
            try:
                await start()
                started_services.append((name, stop))
            except Exception as exc:
                self.telemetry.collector_failed(name, 0.0)
                log.error("%s could not start: %s", name, exc)
        tasks = [asyncio.create_task(self._schedule(c.name, c.interval_s, functools.partial(self._tick, c)),
                                     name=c.name) for c in self.collectors]
        tasks += [asyncio.create_task(self._schedule(name, interval, functools.partial(self._guarded, name, job)),
                                      name=name) for name, interval, job in self.periodic]
        try:
            await self._stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for name, stop in reversed(started_services):
                try:
                    await stop()
                except Exception as exc:
                    log.warning("stopping %s: %s", name, exc)
            for collector in self.collectors:
                with contextlib.suppress(Exception):
                    await collector.close()
            await asyncio.to_thread(self.writer.stop)
            if metrics_runner is not None:
                await metrics_runner.cleanup()
            log.info("stopped; %d rows written in total", int(self.telemetry.written_count()))
