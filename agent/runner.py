"""The schedule: ticks each collector on its own interval, hands rows to the store writer and points
to the snapshot, serves /metrics, runs store maintenance, and shuts down cleanly (last flush).

Shutdown is bounded by `shutdown_grace_s`, counted from stop(): collectors and jobs are cancelled,
services (the proxy: streams in flight are cut) get the grace less a reserve for the writer, the
writer's last flush gets what remains (its rest goes to the spool), then the listeners close."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from agent.collectors.base import Collector
from agent.errors import CampwatchError, CollectorError, ListenError
from agent.exporters.snapshot import Snapshot
from agent.exporters.web_auth import MetricsAuth
from agent.heap import release_free_heap
from agent.listen import bind_listeners, bound_port
from agent.samples import Collected
from agent.store.writer import StoreWriter
from agent.telemetry import Telemetry

log = logging.getLogger(__name__)

Periodic = Callable[[], Awaitable[None]]
Stop = Callable[[float], Awaitable[None]]
"""A service's stop, given the seconds it may take."""
Service = tuple[str, Callable[[], Awaitable[object]], Stop]
"""(name, start, stop) of a part that runs beside the schedule, e.g. the proxy."""

WRITER_RESERVE = (0.2, 2.0)
"""Of the shutdown grace, this share (at most this many seconds) is kept for the writer's last flush."""
METRICS_CLOSE_S = 0.5
HEAP_RELEASE_S = 10.0


def enter_steady_state(switch_interval_s: float | None, *, freeze: bool = True) -> Callable[[], None]:
    """Once the parts are built: the GIL switch interval for the run, and the start's objects frozen
    out of the cyclic garbage collector. Those (imported modules, settings models, SQLAlchemy's
    tables: about 80,000 objects) are never garbage, yet every full collection would scan them all
    while the proxy's event loop waits (0.2 s measured on a loaded machine; nothing once frozen).
    Returns the function that undoes both."""
    previous = sys.getswitchinterval()
    if switch_interval_s is not None:
        sys.setswitchinterval(switch_interval_s)
    if freeze:
        gc.collect(1)  # the young generations' garbage goes first (cheap; a full collection could take 0.2 s)
        gc.freeze()

    def restore() -> None:
        if freeze:
            gc.unfreeze()
        sys.setswitchinterval(previous)

    return restore


@dataclass
class Runner:
    """Owns the parts `agent.wiring.build_runner` assembled and runs them until `stop()`."""

    collectors: list[Collector]
    writer: StoreWriter
    snapshot: Snapshot
    telemetry: Telemetry
    registry: CollectorRegistry
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 18400
    periodic: Sequence[tuple[str, float, Periodic]] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    """(name, start, stop) triples, e.g. the proxy; a service that fails to start is reported like
    any failed part (run_part), not fatal, except a listener that cannot bind (ListenError), which
    ends the start."""
    shutdown_grace_s: float = 10.0
    off_at_start: Sequence[str] = ()
    """Parts that could not be built (the GPU collector without NVML): booked as failed from the
    start, like a failed run; whoever built them has said why."""
    switch_interval_s: float | None = None
    """The GIL switch interval while run() runs (restored after); None leaves the interpreter's."""
    metrics_auth: MetricsAuth | None = None
    metrics_tls: ssl.SSLContext | None = None
    metrics_bound_port: int | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _failing: set[str] = field(default_factory=set)

    _stop_at: float | None = None

    def __post_init__(self) -> None:
        # the agent's own figures are read at export time, by every exporter (Prometheus and OTLP)
        self.snapshot.attach("agent", self.telemetry.points)
        for name in self.off_at_start:
            self._failed(name, 0.0)

    def stop(self) -> None:
        if self._stop_at is None:
            self._stop_at = time.monotonic()
        self._stop.set()

    def _left(self, reserve: float = 0.0) -> float:
        """Seconds left of the shutdown grace (less `reserve`), never negative."""
        started = self._stop_at if self._stop_at is not None else time.monotonic()
        return max(0.0, started + self.shutdown_grace_s - reserve - time.monotonic())

    async def run_part(self, name: str, job: Callable[[], Awaitable[object]]) -> bool:
        """One run of a part (a collector's tick, a periodic job, a service's start) and the one place
        its outcome is booked: a failure sets `campwatch_collector_up{collector=name}` to 0, counts
        in `campwatch_collector_errors_total`, lists the part as failing on /healthz and is logged
        once (a CampwatchError in one line, anything else with its traceback: a bug in one part must
        not stop the others); the next success sets it back to 1 and logs the recovery once.
        Returns whether the run succeeded. A ListenError (a port that cannot be bound) propagates."""
        started = time.perf_counter()
        try:
            await job()
        except ListenError:
            raise
        except Exception as exc:
            if self._failed(name, time.perf_counter() - started):
                log.warning("%s failed: %s", name, exc, exc_info=not isinstance(exc, CampwatchError))
            return False
        self.telemetry.collector_ok(name, time.perf_counter() - started)
        if name in self._failing:
            self._failing.discard(name)
            log.info("%s recovered", name)
        return True

    def _failed(self, name: str, seconds: float) -> bool:
        """Book one failure of a part; True when it was not failing already (log it then)."""
        self.telemetry.collector_failed(name, seconds)
        if name in self._failing:
            return False
        self._failing.add(name)
        return True

    async def _collect(self, collector: Collector) -> None:
        """One tick of a collector: its samples, or the gap a failed attempt carries, go to the store
        and the snapshot; the failure itself goes on to run_part."""
        try:
            collected = await collector.collect()
        except CollectorError as exc:
            if exc.collected is not None:
                self._accept(exc.collected)
            raise
        self._accept(collected)

    def _accept(self, collected: Collected) -> None:
        if collected.rows:
            self.writer.offer(collected.rows, drop_reason="queue_full")
        self.snapshot.replace(collected.source, collected.points)

    async def _schedule(self, name: str, interval: float, job: Callable[[], Awaitable[object]], *,
                        then: Callable[[], object] | None = None) -> None:
        """Fixed-rate runs of a part (through run_part): a slow run delays the next one, never stacks
        them up. `then` runs after each run."""
        next_at = time.monotonic()
        while not self._stop.is_set():
            await self.run_part(name, job)
            if then is not None:
                then()
            next_at += interval
            now = time.monotonic()
            if next_at < now:
                next_at = now
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=next_at - now)

    async def _release_heap(self) -> None:
        """Between the periodic jobs too: the steady work's freed memory (scrapes, proxied bodies,
        flushes) goes back every HEAP_RELEASE_S (well under a millisecond each time)."""
        while not self._stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=HEAP_RELEASE_S)
            release_free_heap()

    async def _metrics(self, _request: web.Request) -> web.Response:
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
        """Raises ListenError when the port cannot be bound."""
        if self.metrics_port is None:
            return None
        sockets = bind_listeners("metrics.port", self.metrics_host, self.metrics_port)
        middlewares = [self.metrics_auth.middleware] if self.metrics_auth is not None else []
        app = web.Application(middlewares=middlewares)
        app.add_routes([web.get("/metrics", self._metrics), web.get("/healthz", self._health)])
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=METRICS_CLOSE_S)
        await runner.setup()
        for sock in sockets:
            await web.SockSite(runner, sock, ssl_context=self.metrics_tls).start()
        self.metrics_bound_port = bound_port(sockets)
        scheme = "https" if self.metrics_tls is not None else "http"
        log.info("serving /metrics on %s://%s:%s/metrics%s", scheme, self.metrics_host, self.metrics_bound_port,
                 " (auth required)" if self.metrics_auth is not None else "")
        return runner

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)

    async def run(self) -> None:
        """Serve until stop(). Raises ListenError (after undoing the start) when a port cannot be bound."""
        restore = enter_steady_state(self.switch_interval_s)
        try:
            await self._run()
        finally:
            restore()

    async def _run(self) -> None:
        self.writer.start()
        started_services: list[tuple[str, Stop]] = []
        metrics_runner: web.AppRunner | None = None
        try:
            metrics_runner = await self._start_metrics()
            for name, start, stop in self.services:
                if await self.run_part(name, start):
                    started_services.append((name, stop))
        except ListenError:
            self.stop()
            await self._shut_down([], started_services, metrics_runner)
            raise
        tasks = [asyncio.create_task(self._schedule(c.name, c.interval_s, functools.partial(self._collect, c)),
                                     name=c.name) for c in self.collectors]
        # the periodic jobs (cost report, drift check, retention) are the large, rare allocations:
        # what they freed goes back to the system after each, not kept resident until the next
        tasks += [asyncio.create_task(self._schedule(name, interval, job, then=release_free_heap), name=name)
                  for name, interval, job in self.periodic]
        tasks.append(asyncio.create_task(self._release_heap(), name="heap"))
        try:
            await self._stop.wait()
        finally:
            self.stop()  # marks the start of the grace when run() ends another way (a cancel)
            await self._shut_down(tasks, started_services, metrics_runner)

    async def _shut_down(self, tasks: list[asyncio.Task[None]], services: list[tuple[str, Stop]],
                         metrics_runner: web.AppRunner | None) -> None:
        """Every step is bounded by what is left of the grace, so a hung part cannot hold the exit.
        A job blocked in a worker thread (a database that does not answer) is abandoned there."""
        grace = self.shutdown_grace_s
        reserve = min(WRITER_RESERVE[0] * grace, WRITER_RESERVE[1])
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self._left(reserve))
        for name, stop in reversed(services):
            try:
                await asyncio.wait_for(stop(self._left(reserve)), timeout=self._left(reserve) + 0.5)
            except TimeoutError:
                log.warning("stopping %s took longer than the shutdown grace (%gs); left behind", name, grace)
            except Exception as exc:
                log.warning("stopping %s: %s", name, exc)
        for collector in self.collectors:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(collector.close(), timeout=max(self._left(reserve), 0.1))
        left = self._left()
        try:
            await asyncio.wait_for(asyncio.to_thread(self.writer.stop, timeout_s=left), timeout=left + 0.5)
        except TimeoutError:
            log.warning("the store did not take the last rows within the shutdown grace (%gs)", grace)
        if metrics_runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(metrics_runner.cleanup(), timeout=METRICS_CLOSE_S + 0.5)
        log.info("stopped; %d rows written in total", int(self.telemetry.written_count()))
