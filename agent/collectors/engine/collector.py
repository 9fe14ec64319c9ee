"""The engine collector: scrapes one model server's /metrics and turns it into samples and SLIs.

One collector per endpoint, each with its own HTTP session and a timeout shorter than its interval,
so a slow or hung server only ever costs its own collector. Parsing and deriving run in a worker
thread, keeping the event loop (and the proxy on it) responsive during a large page.

A page is untrusted: it is read up to `max_page_bytes` and parsed up to `max_series` samples and
`max_models` (model, engine) pairs, else the scrape is a gap naming the limit; a redirect is
followed only on the same scheme, host and port (elsewhere it is a scrape error naming its target,
credentials masked); once a large page
is refused, freed memory is handed back to the OS so RSS returns to its baseline."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import aiohttp
from yarl import URL

from agent.collectors.engine.derive import PeakFigures, SliDeriver
from agent.collectors.engine.parse import (
    MAX_MODELS,
    MAX_SERIES,
    REJECT_REASONS,
    UNMAPPED_NAMES_MAX,
    ParsedPage,
    parse_page,
)
from agent.collectors.engine.windows import Window, parse_windows
from agent.concepts.engine import ENGINE_RAW_EXPORTED, ENGINE_STORED_HISTOGRAMS, ENGINE_STORED_VALUES
from agent.config import EngineSettings
from agent.errors import ConfigError, EngineScrapeError, PageError, Problem
from agent.samples import Collected, EngineSample, Point, Row, labels
from agent.urls import display_url, scrub_text

log = logging.getLogger(__name__)

SessionFactory = Callable[[], aiohttp.ClientSession]
MAX_PAGE_BYTES = 8 * 1024 * 1024
"""Default engine.max_page_bytes: a real vLLM page with many engine cores is well under 1 MiB."""
_TRIM_ABOVE_BYTES = 1 << 20
"""After a refused page larger than this, freed heap is returned to the OS (glibc malloc_trim). A
page that was read is left to the allocator: the next scrape reuses its memory."""
_MAX_REDIRECTS = 3
"""Same-origin redirects followed; a redirect to another host or port is never followed."""
_UNMAPPED_LISTED = 50
"""Names listed in one log line about unknown families; the rest are counted."""
_HEADERS = {"Accept": "text/plain;version=0.0.4;q=1,*/*;q=0.1"}  # not OpenMetrics: parse one format
_RAW_FAMILIES = tuple((concept, "campwatch_engine_" + concept) for concept in ENGINE_RAW_EXPORTED)
_CACHED_BY_SOURCE = "cached_prompt_tokens_by_source_total"


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
        max_page_bytes: int = MAX_PAGE_BYTES,
        max_series: int = MAX_SERIES,
        max_models: int = MAX_MODELS,
        peak: PeakFigures | None = None,
    ) -> None:
        if not 0 < timeout_s < interval_s:
            raise ValueError(f"{display_url(url)}: timeout_s ({timeout_s}) must be positive and shorter than "
                             f"interval_s ({interval_s})")
        self._fetch_url = url  # may hold credentials: only the HTTP client sees it
        self.url = display_url(url)  # names the server everywhere else (labels, rows, logs)
        self.name = f"engine:{self.url}"
        self.interval_s = interval_s
        self.host = host
        self.simulated = simulated
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session_factory = session_factory
        self._session: aiohttp.ClientSession | None = None
        self._clock = clock
        self._deriver = SliDeriver(windows, interval_s, peak)
        self._kind = "unknown"
        self._max_page_bytes = max_page_bytes
        self._max_series = max_series
        self._max_models = max_models
        self._logged_unmapped: set[str] = set()  # bounded by UNMAPPED_NAMES_MAX
        self._unmapped_full_logged = False
        self._rejected = dict.fromkeys(REJECT_REASONS, 0)
        self._rejected_logged: set[str] = set()
        self._lock = asyncio.Lock()

    async def collect(self) -> Collected:
        """One scrape. Raises EngineScrapeError with `.collected` (the gap) set on
        HTTP errors, timeouts and pages that are not a known server's metrics."""
        async with self._lock:
            started = self._clock()
            ts = datetime.now(UTC)
            text = ""
            try:
                text = await self._fetch()
                return await asyncio.to_thread(self._digest, text, started, ts)
            except _Problem as problem:
                if len(text) > _TRIM_ABOVE_BYTES:  # a large page refused: give its memory back now
                    del text
                    release_memory()
                raise EngineScrapeError(self.url, str(problem), collected=self._gap(ts)) from None

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def _fetch(self) -> str:
        session = self._session
        if session is None or session.closed:
            session = self._session = (self._session_factory or aiohttp.ClientSession)()
        limit = self._max_page_bytes
        chunks: list[bytes] = []
        size = 0
        url = URL(self._fetch_url)
        try:
            async with asyncio.timeout(self._timeout.total):  # one deadline, redirects included
                for _ in range(_MAX_REDIRECTS + 1):
                    async with session.get(url, timeout=self._timeout, headers=_HEADERS,
                                           allow_redirects=False) as response:
                        if 300 <= response.status < 400 and "Location" in response.headers:
                            url = _same_origin_redirect(url, response.status, response.headers["Location"])
                            continue
                        if response.status != 200:
                            raise _Problem(f"HTTP {response.status} {response.reason or ''}".rstrip()
                                           + " (expected 200 with a metrics page)")
                        length = response.content_length
                        if length is not None and length > limit:
                            raise _Problem(_too_large(limit, f"Content-Length {length}"))
                        async for chunk in response.content.iter_chunked(1 << 16):
                            size += len(chunk)
                            if size > limit:
                                raise _Problem(_too_large(limit, f"more than {limit} bytes"))
                            chunks.append(chunk)
                        break
                else:
                    raise _Problem(f"more than {_MAX_REDIRECTS} redirects (expected a metrics page)")
        except TimeoutError:
            raise _Problem(f"no complete answer within {self._timeout.total:g}s") from None
        except aiohttp.ClientError as exc:
            raise _Problem(f"request failed: {exc.__class__.__name__}: {scrub_text(str(exc))}") from None
        finally:
            if size > _TRIM_ABOVE_BYTES and size > limit:
                chunks.clear()
                release_memory()
        body = b"".join(chunks)
        del chunks
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Problem(f"expected UTF-8 text, got undecodable bytes at offset {exc.start}") from None

    def _digest(self, text: str, started: float, ts: datetime) -> Collected:
        try:
            page = parse_page(text, max_series=self._max_series, max_models=self._max_models)
        except PageError as exc:
            raise _Problem(str(exc)) from None
        self._count_rejected(page)
        if self._deriver.observe(started, page):
            log.info("%s: counters went back, so the server restarted; rates continue from the new values",
                     self.url)
        self._kind = page.kind
        self._log_unmapped(page)
        sli = self._deriver.points(self.host, self.url)
        server = labels(host=self.host, server=self.url)
        points = [
            Point("campwatch_engine_up", 1.0, labels(host=self.host, server=self.url, kind=page.kind)),
            Point("campwatch_engine_unmapped_metrics", float(len(page.unmapped) + page.unmapped_overflow), server),
            *(Point("campwatch_engine_rejected_samples_total", float(n),
                    labels(host=self.host, server=self.url, reason=reason))
              for reason, n in self._rejected.items()),
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
        """Each unknown family once, remembering at most UNMAPPED_NAMES_MAX names; a log line lists
        at most _UNMAPPED_LISTED of them."""
        logged = self._logged_unmapped
        room = UNMAPPED_NAMES_MAX - len(logged)
        new = sorted(page.unmapped - logged)
        if room > 0 and new:
            new = new[:room]
            logged.update(new)
            listed = ", ".join(new[:_UNMAPPED_LISTED])
            more = f" and {len(new) - _UNMAPPED_LISTED} more" if len(new) > _UNMAPPED_LISTED else ""
            log.info("%s: %d %s metric families are not in campwatch's map (counted in "
                     "campwatch_engine_unmapped_metrics): %s%s", self.url, len(new), page.kind, listed, more)
        elif (room <= 0 and (new or page.unmapped_overflow)) and not self._unmapped_full_logged:
            self._unmapped_full_logged = True
            log.info("%s: more than %d unknown metric families seen; further ones are counted in "
                     "campwatch_engine_unmapped_metrics, not logged", self.url, UNMAPPED_NAMES_MAX)

    def _count_rejected(self, page: ParsedPage) -> None:
        for reason, n in page.rejected.items():
            self._rejected[reason] = self._rejected.get(reason, 0) + n
            if n and reason not in self._rejected_logged:
                self._rejected_logged.add(reason)
                log.warning("%s: %d samples rejected (%s): not stored and not used in rates; counted in "
                            "campwatch_engine_rejected_samples_total (logged once per reason)", self.url, n, reason)


def _same_origin_redirect(url: URL, status: int, location: str) -> URL:
    """Where a redirect leads, when it stays on the scraped URL's scheme, host and port (a server
    that moves /metrics to /metrics/); any other target is a scrape error naming it, masked."""
    try:
        target = url.join(URL(location))
        same = target.origin() == url.origin()
    except (ValueError, TypeError):
        raise _Problem(f"HTTP {status} redirect with an unreadable Location header, not followed") from None
    if not same:
        raise _Problem(f"HTTP {status} redirect to {_masked(str(target))}, not followed: it leaves {url.origin()} "
                       "(expected 200 with a metrics page at the configured URL)")
    return target


def _too_large(limit: int, seen: str) -> str:
    return (f"page larger than engine.max_page_bytes ({limit} bytes; got {seen}); stopped reading, "
            "expected a model server's metrics page")


def _masked(location: str) -> str:
    """A redirect target for an error message: credentials replaced, length bounded."""
    try:
        url = URL(location)
        if url.user is not None or url.password is not None:
            url = url.with_user("***").with_password(None) if url.password is None else \
                url.with_user("***").with_password("***")
        text = str(url)
    except (ValueError, TypeError):
        text = "(unreadable Location header)"
    return text if len(text) <= 200 else text[:200] + "..."


_LIBC: ctypes.CDLL | bool | None = False


def release_memory() -> None:
    """Hand freed heap memory back to the OS (glibc malloc_trim); a no-op elsewhere. A large page
    frees many megabytes at once, which glibc otherwise keeps, so RSS would stay at its peak."""
    global _LIBC
    if _LIBC is False:
        name = ctypes.util.find_library("c")
        try:
            lib = ctypes.CDLL(name) if name else None
        except OSError:
            lib = None
        _LIBC = lib if lib is not None and hasattr(lib, "malloc_trim") else None
    if isinstance(_LIBC, ctypes.CDLL):
        _LIBC.malloc_trim(0)


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
            problems.append(Problem(f"engine.urls[{i}]", f"{display_url(url)} is listed twice"))
        seen.add(url)
    if problems:
        raise ConfigError("engine settings", problems)
    from agent.collectors.engine.peaks import resolve_peak

    peak = resolve_peak(settings.gpu_model, settings.mfu_dtype, settings.gpu_peaks_file)
    return [
        EngineCollector(url, host=host, interval_s=settings.interval_s, timeout_s=settings.effective_timeout_s,
                        max_page_bytes=settings.max_page_bytes, max_series=settings.max_series,
                        max_models=settings.max_models,
                        windows=windows, session_factory=session_factory, simulated=simulated, peak=peak)
        for url in settings.urls
    ]
