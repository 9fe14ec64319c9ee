"""The drift worker: each check runs in a fresh process started with the spawn context, so Evidently
(about 4 s to import, a few hundred MB) never loads into the agent, and its memory is returned to
the system as soon as the check ends. The child opens its own database connection, computes, writes
the results to drift_results, and sends them back over a pipe.

A check that fails, times out or dies (e.g. killed for memory) is reported in one log line and
`tick` returns no results; the agent carries on. Unix only (the event loop watches the pipe)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from agent.config import DriftSettings
from agent.drift.check import DEFAULT_REFUSAL_PHRASES
from agent.drift.results import is_insufficient, is_summary
from agent.errors import DriftError
from agent.samples import DriftResult
from agent.utc import as_utc

log = logging.getLogger(__name__)

_MESSAGE_CHARS = 300


def _one_line(text: str) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= _MESSAGE_CHARS else line[: _MESSAGE_CHARS - 3] + "..."


@dataclass(frozen=True, slots=True)
class _Job:
    engine_url: str
    settings: DriftSettings
    host: str
    now: datetime
    refusal_phrases: tuple[str, ...]


def _peak_rss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def _child_main(conn: Connection, job: _Job) -> None:
    """Runs in the spawned process. Always answers: ("ok", results, rss) or ("error", message, rss)."""
    try:
        from agent.drift.check import run_drift_check
        from agent.store.db import open_engine

        engine = open_engine(job.engine_url)
        try:
            results = run_drift_check(engine, job.settings, job.host, now=job.now,
                                      refusal_phrases=job.refusal_phrases)
        finally:
            engine.dispose()
        conn.send(("ok", results, _peak_rss_bytes()))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {_one_line(str(exc))}", _peak_rss_bytes()))
    finally:
        conn.close()


class _Child:
    """One spawned check process and the read end of its result pipe."""

    def __init__(self, job: _Job) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._recv, send = ctx.Pipe(duplex=False)
        self._send: Connection | None = send
        self._process = ctx.Process(target=_child_main, args=(send, job), name="campwatch-drift", daemon=True)

    def start(self) -> None:
        self._process.start()
        if self._send is not None:
            self._send.close()  # so a child that dies shows up as EOF, not as a silent wait
            self._send = None

    def fileno(self) -> int:
        return self._recv.fileno()

    def ready(self, timeout: float) -> bool:
        return self._recv.poll(timeout)

    def outcome(self) -> tuple[str, Any, int | None]:
        try:
            status, payload, rss = self._recv.recv()
        except EOFError:
            self._process.join(5)
            raise DriftError(f"drift worker process exited with code {self._process.exitcode} "
                             "before reporting (killed for memory?)") from None
        return str(status), payload, rss

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()

    def close(self, grace_s: float = 5.0) -> None:
        if self._process.pid is not None:
            self._process.join(grace_s)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(1.0)
        self._recv.close()
        if self._send is not None:
            self._send.close()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class DriftWorker:
    """Runs `run_drift_check` for one host in a child process. The agent's drift job calls
    `await check()` every `settings.interval_s`; `tick()` is the form that logs instead of raising,
    `run_once()` the blocking one. A check longer than `timeout_s`
    (default: the interval) is killed."""

    def __init__(self, engine_url: str, settings: DriftSettings, host: str, *,
                 refusal_phrases: Sequence[str] = DEFAULT_REFUSAL_PHRASES, timeout_s: float | None = None) -> None:
        self.engine_url = engine_url
        self.settings = settings
        self.host = host
        self.refusal_phrases = tuple(refusal_phrases)
        self.timeout_s = timeout_s if timeout_s is not None else settings.interval_s
        self.last_error: str | None = None
        self.last_duration_s: float | None = None
        self.last_peak_rss_bytes: int | None = None

    def _job(self, now: datetime | None) -> _Job:
        when = as_utc(now) if now is not None else datetime.now(UTC)
        return _Job(self.engine_url, self.settings, self.host, when, self.refusal_phrases)

    def _finish(self, outcome: tuple[str, Any, int | None], started: float) -> list[DriftResult]:
        status, payload, rss = outcome
        self.last_duration_s = time.monotonic() - started
        self.last_peak_rss_bytes = rss
        if status != "ok":
            raise DriftError(f"drift check failed in the worker: {payload}")
        results: list[DriftResult] = list(payload)
        self.last_error = None
        summaries = [r for r in results if is_summary(r)]
        drifted = sorted({f"{r.model}/{r.feature}" for r in results if r.drifted and not is_summary(r)})
        log.info("drift check: %d model(s), %d insufficient, drifted: %s; %.1f s, worker peak RSS %.0f MiB",
                 len(summaries), sum(is_insufficient(r) for r in summaries), ", ".join(drifted) or "none",
                 self.last_duration_s, (rss or 0) / 2**20)
        return results

    def run_once(self, now: datetime | None = None) -> list[DriftResult]:
        """Check, write and return the results; blocks until the child answers. Raises DriftError."""
        child = _Child(self._job(now))
        started = time.monotonic()
        try:
            child.start()
            if not child.ready(self.timeout_s):
                child.kill()
                raise DriftError(f"drift check timed out after {self.timeout_s:.0f} s; worker killed")
            return self._finish(child.outcome(), started)
        finally:
            child.close()

    async def _run(self, now: datetime | None) -> list[DriftResult]:
        child = _Child(self._job(now))
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(child.start)
            readable: asyncio.Future[None] = loop.create_future()
            fd = child.fileno()
            loop.add_reader(fd, _settle, readable)
            try:
                await asyncio.wait_for(readable, self.timeout_s)
            except TimeoutError:
                raise DriftError(f"drift check timed out after {self.timeout_s:.0f} s; worker killed") from None
            finally:
                loop.remove_reader(fd)
            return self._finish(child.outcome(), started)
        except BaseException:
            child.kill()  # cancelled (agent stopping) or failed: never leave a child computing
            raise
        finally:
            await asyncio.to_thread(child.close)

    async def check(self, now: datetime | None = None) -> list[DriftResult]:
        """One check without blocking the event loop (the agent's drift job). Raises DriftError, in
        one line also kept in `last_error`, whatever went wrong; [] when drift is disabled."""
        if not self.settings.enabled:
            return []
        try:
            return await self._run(now)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.last_error = _one_line(str(exc)) if isinstance(exc, DriftError) else \
                f"{type(exc).__name__}: {_one_line(str(exc))}"
            raise DriftError(self.last_error) from exc

    async def tick(self, now: datetime | None = None) -> list[DriftResult]:
        """`check` that never raises (except cancellation): a failure is logged in one line, kept in
        `last_error`, and gives []."""
        try:
            return await self.check(now)
        except DriftError as exc:
            log.warning("drift check failed: %s", exc)
            return []
