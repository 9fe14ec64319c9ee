"""The engine collector: scrapes one model server's /metrics and turns it into samples and SLIs.

One collector per endpoint, each with its own HTTP session and a timeout shorter than its interval,
so a slow or hung server only ever costs its own collector. Parsing and deriving run in a worker
thread, keeping the event loop (and the proxy on it) responsive during a large page."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import aiohttp

from agent.collectors.engine.derive import PeakFigures, SliDeriver
from agent.collectors.engine.maps import RAW_EXPORTED
from agent.collectors.engine.parse import PageError, ParsedPage, parse_page
from agent.collectors.engine.windows import Window, parse_windows
from agent.config import EngineSettings
from agent.errors import ConfigError, EngineScrapeError, Problem
from agent.samples import Collected, EngineSample, Point, Row, labels
from agent.store.schema import ENGINE_STORED_HISTOGRAMS, ENGINE_STORED_VALUES

log = logging.getLogger(__name__)

SessionFactory = Callable[[], aiohttp.ClientSession]
MAX_BODY_BYTES = 32 * 1024 * 1024
_HEADERS = {"Accept": "text/plain;version=0.0.4;q=1,*/*;q=0.1"}  # not OpenMetrics: parse one format
_RAW_FAMILIES = tuple((concept, "campwatch_engine_" + concept) for concept in RAW_EXPORTED)
_CACHED_BY_SOURCE = "cached_prompt_tokens_by_source_total"


class EngineScrapeFailure(EngineScrapeError):
    """A failed scrape. `.collected` holds what to expose for it: one up=0 row and the
    `campwatch_engine_up 0` point only, so the snapshot shows a gap, not stale values."""

    def __init__(self, server: str, message: str, collected: Collected) -> None:
        super().__init__(server, message)
        self.collected = collected


class _Problem(Exception):
    pass


class EngineCollector:
    """Implements agent.collectors.base.Collector for one /metrics URL."""

    def __init__(
        self,
        url: str,
        *,
        host: str,
        interval_s: float,
        timeout_s: float,
        windows: Sequence[Window],
        session_factory: SessionFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        simulated: bool = False,
        peak: PeakFigures | None = None,
    ) -> None:
        if not 0 < timeout_s < interval_s:
            raise ValueError(f"{url}: timeout_s ({timeout_s}) must be positive and shorter than "
                             f"interval_s ({interval_s})")
        self.url = url
        self.name = f"engine:{url}"
        self.interval_s = interval_s
        self.host = host
        self.simulated = simulated
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session_factory = session_factory
        self._session: aiohttp.ClientSession | None = None
        self._clock = clock
        self._deriver = SliDeriver(windows, interval_s, peak)
        self._kind = "unknown"
        self._logged_unmapped: set[str] = set()
        self._lock = asyncio.Lock()

    async def collect(self) -> Collected:
        """One scrape. Raises EngineScrapeFailure (an EngineScrapeError) with `.collected` set on
        HTTP errors, timeouts and pages that are not a known server's metrics."""
        async with self._lock:
            started = self._clock()
            ts = datetime.now(UTC)
            try:
                text = await self._fetch()
                return await asyncio.to_thread(self._digest, text, started, ts)
            except _Problem as problem:
                raise EngineScrapeFailure(self.url, str(problem), self._gap(ts)) from None

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def _fetch(self) -> str:
        session = self._session
        if session is None or session.closed:
            session = self._session = (self._session_factory or aiohttp.ClientSession)()
        body = bytearray()
        try:
            async with session.get(self.url, timeout=self._timeout, headers=_HEADERS) as response:
                if response.status != 200:
                    raise _Problem(f"HTTP {response.status} {response.reason or ''}".rstrip()
                                   + " (expected 200 with a metrics page)")
                async for chunk in response.content.iter_chunked(1 << 16):
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        raise _Problem(f"page larger than {MAX_BODY_BYTES} bytes; expected a metrics page")
        except TimeoutError:
            raise _Problem(f"no complete answer within {self._timeout.total:g}s") from None
        except aiohttp.ClientError as exc:
            raise _Problem(f"request failed: {exc.__class__.__name__}: {exc}") from None
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Problem(f"expected UTF-8 text, got undecodable bytes at offset {exc.start}") from None

    def _digest(self, text: str, started: float, ts: datetime) -> Collected:
        try:
            page = parse_page(text)
        except PageError as exc:
            raise _Problem(str(exc)) from None
        if self._deriver.observe(started, page):
            log.info("%s: counters went back, so the server restarted; rates continue from the new values",
                     self.url)
        self._kind = page.kind
        self._log_unmapped(page)
        sli = self._deriver.points(self.host, self.url)
        server = labels(host=self.host, server=self.url)
        points = [
            Point("campwatch_engine_up", 1.0, labels(host=self.host, server=self.url, kind=page.kind)),
            Point("campwatch_engine_unmapped_metrics", float(len(page.unmapped)), server),
            *_raw_points(page, self.host, self.url),
            *sli,
            Point("campwatch_engine_scrape_duration_seconds", self._clock() - started, server),
        ]
        return Collected(source=self.name, rows=self._rows(page, ts), points=tuple(points))

    def _rows(self, page: ParsedPage, ts: datetime) -> tuple[Row, ...]:
        rows: list[Row] = []
        for key in sorted(page.series):
            series = page.series[key]
            rows.append(EngineSample(
                ts=ts, host=self.host, server=self.url, kind=page.kind, model=series.model,
                engine=series.engine, up=True,
                values={k: series.values[k] for k in ENGINE_STORED_VALUES if k in series.values},
                histograms={k: series.histograms[k] for k in ENGINE_STORED_HISTOGRAMS if k in series.histograms},
                simulated=self.simulated,
            ))
        return tuple(rows)

    def _gap(self, ts: datetime) -> Collected:
        row = EngineSample(ts=ts, host=self.host, server=self.url, kind=self._kind, model="", engine="",
                           up=False, simulated=self.simulated)
        up = Point("campwatch_engine_up", 0.0, labels(host=self.host, server=self.url, kind=self._kind))
        return Collected(source=self.name, rows=(row,), points=(up,))

    def _log_unmapped(self, page: ParsedPage) -> None:
        new = page.unmapped - self._logged_unmapped
        if new:
            self._logged_unmapped |= new
            log.info("%s: %d %s metric families are not in campwatch's map (counted in "
                     "campwatch_engine_unmapped_metrics): %s", self.url, len(new), page.kind, ", ".join(sorted(new)))


def _raw_points(page: ParsedPage, host: str, server: str) -> list[Point]:
    out: list[Point] = []
    for key in sorted(page.series):
        series = page.series[key]
        lab = labels(host=host, server=server, model=series.model, engine=series.engine)
        values = series.values
        for concept, name in _RAW_FAMILIES:
            value = values.get(concept)
            if value is not None:
                out.append(Point(name, value, lab))
        for source, value in sorted(series.by_label.get(_CACHED_BY_SOURCE, {}).items()):
            out.append(Point("campwatch_engine_" + _CACHED_BY_SOURCE, value,
                             labels(host=host, server=server, model=series.model, engine=series.engine,
                                    source=source)))
    for lora in page.lora:
        out.append(Point("campwatch_engine_lora_adapter_active", 1.0,
                         labels(host=host, server=server, engine=lora.engine, adapter=lora.adapter,
                                state=lora.state)))
    return out


def build_engine_collectors(settings: EngineSettings, host: str,
                            session_factory: SessionFactory | None = None, *,
                            simulated: bool = False) -> list[EngineCollector]:
    """One collector per configured URL. ConfigError for bad windows or a URL listed twice."""
    windows = parse_windows(settings.windows, settings.interval_s)
    seen: set[str] = set()
    problems: list[Problem] = []
    for i, url in enumerate(settings.urls):
        if url in seen:
            problems.append(Problem(f"engine.urls[{i}]", f"{url} is listed twice"))
        seen.add(url)
    if problems:
        raise ConfigError("engine settings", problems)
    from agent.collectors.engine.peaks import resolve_peak

    peak = resolve_peak(settings.gpu_model, settings.mfu_dtype, settings.gpu_peaks_file)
    return [
        EngineCollector(url, host=host, interval_s=settings.interval_s, timeout_s=settings.effective_timeout_s,
                        windows=windows, session_factory=session_factory, simulated=simulated, peak=peak)
        for url in settings.urls
    ]
