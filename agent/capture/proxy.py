"""The OpenAI-compatible reverse proxy: forwards every request to the model server untouched
(streams chunk by chunk as they arrive) and records what each request cost and produced.

It fails open: records go to a non-blocking sink, and any failure to build or hand over a record is
counted, never felt by the client. Upstream failures become OpenAI-format JSON errors (502, 504);
an over-limit body gets 413. Timeouts: `connect_timeout_s` to connect, `timeout_s` for the longest
silence while waiting for the upstream (before the headers or between two chunks), so a long
generation that keeps streaming is never cut."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import CollectorRegistry
from yarl import URL

from agent.capture.caller import CallerLabels, api_key, resolve_salt
from agent.capture.headers import client_response_headers, upstream_request_headers
from agent.capture.instruments import ProxyInstruments
from agent.capture.records import Exchange, build_record, sample_output
from agent.capture.request_info import (
    COMPLETION_SUFFIXES,
    inspect_body,
    needs_usage_injection,
    with_usage_requested,
)
from agent.capture.sse import SseSplitter
from agent.config import CaptureSettings, ProxySettings
from agent.errors import ConfigError, Problem
from agent.samples import Row
from agent.store.sink import RowSink

log = logging.getLogger(__name__)

ROUTE_LABELS: frozenset[str] = frozenset({
    "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/v1/responses",
    "/v1/rerank", "/v1/score", "/v1/audio/transcriptions", "/v1/audio/translations", "/v1/moderations",
    "/rerank", "/score", "/pooling", "/classify", "/tokenize", "/detokenize", "/health", "/metrics",
    "/version",
})
"""Paths exported as their own `route` label; any other path is `other` (paths are client-chosen,
labels must stay few). Records keep the real path."""

MODEL_LABELS_MAX = 100
"""Distinct `model` label values before further ones export as `other` (the model is client input)."""

WHOLE_BODY_MAX = 1 << 20
"""A non-streamed response with a Content-Length up to this is read and sent in one write."""

TEE_MAX = 16 << 20
"""Non-streamed completion bodies are kept in memory up to this for parsing; larger ones give usage only."""

SHUTDOWN_GRACE_S = 10.0
"""At stop, requests in flight get this long to finish before they are cut."""

_DROP_REASON = "proxy_queue_full"
_CAPTURE_SUFFIXES = (*COMPLETION_SUFFIXES, "/embeddings")


class _ClientGone(Exception):
    """Writing to the client failed: it disconnected."""


class _BodyTooLarge(Exception):
    pass


def _utc_now() -> datetime:
    return datetime.now(UTC)


def openai_error(status: int, message: str, kind: str, code: str) -> web.Response:
    """An error in the OpenAI API's shape, so SDK clients surface the message."""
    return web.json_response({"error": {"message": message, "type": kind, "param": None, "code": code}},
                             status=status)


async def _write(response: web.StreamResponse, data: bytes) -> None:
    try:
        await response.write(data)
    except ConnectionError as exc:
        raise _ClientGone from exc


class ProxyServer:
    """Serve the proxy on `proxy.listen` until `stop()`. Records go to `sink` (never awaited);
    instruments are created on `registry`. `clock` gives record timestamps, `timer` durations."""

    def __init__(self, proxy: ProxySettings, capture: CaptureSettings, host: str, sink: RowSink,
                 registry: CollectorRegistry, clock: Callable[[], datetime] = _utc_now, *,
                 timer: Callable[[], float] = time.perf_counter, simulated: bool = False) -> None:
        if not proxy.listen or not proxy.upstream:
            raise ConfigError("proxy", [Problem("proxy.listen / proxy.upstream",
                                                "both must be set to run the proxy")])
        bind_host, _, port = proxy.listen.rpartition(":")
        self._bind_host = bind_host.strip("[]")
        self._bind_port = int(port)
        self._upstream = proxy.upstream.rstrip("/")
        self._settings = proxy
        self._capture = capture
        self._host = host
        self._sink = sink
        self._clock = clock
        self._timer = timer
        self._simulated = simulated
        self._inst = ProxyInstruments(registry)
        self._callers = CallerLabels(resolve_salt(capture))
        self._id_prefix = secrets.token_hex(8)  # request ids: random per process, then a counter
        self._ids = itertools.count()
        self._inject_usage = capture.inject_usage
        self._rng = random.Random()
        self._model_labels: set[str] = set()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None
        self._stopping = False
        self.port: int | None = None

    async def start(self) -> int:
        """Bind and serve; returns the bound port (listen may ask for port 0)."""
        connector = aiohttp.TCPConnector(
            limit=0,  # the model server's own queue is the limit; a second one here would hide it
            keepalive_timeout=4.0,  # below uvicorn's 5 s idle close, so a pooled connection is never stale
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, connect=self._settings.connect_timeout_s,
                                          sock_read=self._settings.timeout_s),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )
        server = web.Server(self._handle, handler_cancellation=True, access_log=None)
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._bind_host, self._bind_port, backlog=1024)
        try:
            await site.start()
        except OSError:
            await self.stop()
            raise
        sockets = getattr(site._server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else self._bind_port
        log.info("proxy listening on %s:%s, forwarding to %s", self._bind_host, self.port, self._upstream)
        return self.port

    async def stop(self) -> None:
        self._stopping = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- one request -----------------------------------------------------------------------------
    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        ex = Exchange(ts=self._clock(), started=self._timer(),
                      request_id=f"{self._id_prefix}{next(self._ids):016x}", method=request.method,
                      path=request.path, caller=self._callers(api_key(request.headers)),
                      team=(request.headers.get(self._capture.team_header, "").strip()[:255] or None)
                      if self._capture.team_header else None)
        self._inst.in_flight += 1
        try:
            return await self._forward(request, ex)
        except asyncio.CancelledError:
            # handler_cancellation: the client went away while we waited on the upstream
            ex.error = ex.error or ("proxy_stopping" if self._stopping else "client_disconnected")
            if ex.error == "client_disconnected":
                self._inst.error("client_disconnected")
            raise
        finally:
            self._inst.in_flight -= 1
            if ex.finished is None:
                ex.finished = self._timer()
            self._emit(ex)

    async def _forward(self, request: web.BaseRequest, ex: Exchange) -> web.StreamResponse:
        assert self._session is not None
        try:
            body = await self._read_body(request)
        except _BodyTooLarge:
            return self._fail(ex, 413, "body_too_large", "invalid_request_error", "request_too_large",
                              f"request body exceeds the proxy's limit of {self._settings.max_body_bytes} "
                              "bytes (proxy.max_body_bytes)")
        except (ConnectionError, aiohttp.ClientError, asyncio.IncompleteReadError):
            ex.error = "client_disconnected"
            self._inst.error("client_disconnected")
            return web.Response(status=400)
        if body:
            ex.info = inspect_body(body)
        inject = self._inject_usage and needs_usage_injection(ex.path, ex.info)
        url = URL(self._upstream + request.raw_path, encoded=True)
        headers = upstream_request_headers(request.headers,
                                           identity_encoding=ex.path.endswith(_CAPTURE_SUFFIXES))
        data = with_usage_requested(body, ex.info) if inject else (body or None)
        try:
            resp = await self._session.request(request.method, url, headers=headers, data=data,
                                               allow_redirects=False)
            if inject and resp.status in (400, 422):
                resp = await self._retry_without_injection(resp, request.method, url, headers, body)
                inject = self._inject_usage
        except TimeoutError:
            return self._fail(ex, 504, "upstream_timeout", "upstream_error", "upstream_timeout",
                              f"the model server did not answer within {self._settings.timeout_s} s "
                              "(proxy.timeout_s)")
        except aiohttp.ClientConnectorError as exc:
            return self._fail(ex, 502, "upstream_unavailable", "upstream_error", "upstream_unavailable",
                              f"cannot connect to the model server at {self._upstream}: {exc.os_error}")
        except aiohttp.ClientError as exc:
            return self._fail(ex, 502, "upstream_broken", "upstream_error", "upstream_broken",
                              f"the model server at {self._upstream} closed the connection: {exc}")
        ex.status = resp.status
        try:
            return await self._relay(request, resp, ex, strip=inject)
        finally:
            # A no-op once the body was read whole; else it drops the connection, so the upstream aborts.
            resp.close()

    async def _retry_without_injection(self, first: aiohttp.ClientResponse, method: str, url: URL,
                                       headers: CIMultiDict[str], body: bytes) -> aiohttp.ClientResponse:
        """An upstream that rejects stream_options must still serve the client's own request: resend
        it as it came, and stop injecting if that succeeds."""
        assert self._session is not None
        await first.read()
        first.release()
        resp = await self._session.request(method, url, headers=headers, data=body or None,
                                           allow_redirects=False)
        if resp.status < 400:
            self._inject_usage = False
            log.warning("the model server rejects stream_options.include_usage (HTTP %s); streaming requests "
                        "go through unchanged from now on and their token counts will be missing",
                        first.status)
        return resp

    async def _read_body(self, request: web.BaseRequest) -> bytes:
        limit = self._settings.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            raise _BodyTooLarge
        if not request.body_exists:
            return b""
        if request.headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await request.content.readany()
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _fail(self, ex: Exchange, status: int, reason: str, kind: str, code: str,
              message: str) -> web.Response:
        ex.status = status
        ex.error = reason
        self._inst.error(reason)
        return openai_error(status, message, kind, code)

    # --- the response ----------------------------------------------------------------------------
    async def _relay(self, request: web.BaseRequest, resp: aiohttp.ClientResponse, ex: Exchange, *,
                     strip: bool) -> web.StreamResponse:
        content_type = resp.headers.get("Content-Type", "")
        encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("identity", "")
        sse = content_type.startswith("text/event-stream")
        ex.stream = sse or ex.info.stream
        parse = not encoded and ex.path.endswith(_CAPTURE_SUFFIXES)
        try:
            if sse:
                return await self._relay_stream(request, resp, ex, strip=strip and not encoded, parse=parse)
            return await self._relay_body(request, resp, ex, parse=parse and "json" in content_type)
        except _ClientGone:
            ex.error = "client_disconnected"
            self._inst.error("client_disconnected")
            return web.Response(status=499)  # not sent: the client is gone
        except (TimeoutError, aiohttp.ClientError) as exc:
            # The status line is already out: cut the connection so the client sees a broken response
            # rather than a clean, silently truncated one.
            ex.error = "upstream_timeout" if isinstance(exc, TimeoutError) else "upstream_broken"
            self._inst.error(ex.error)
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=502)

    async def _relay_body(self, request: web.BaseRequest, resp: aiohttp.ClientResponse, ex: Exchange, *,
                          parse: bool) -> web.StreamResponse:
        length = resp.content_length
        full = parse and ex.path.endswith(COMPLETION_SUFFIXES)  # chat text matters; elsewhere only usage
        if request.method == "HEAD" or resp.status in (204, 304):
            # No body, but the headers (Content-Length included) describe the resource: keep them all.
            empty = web.StreamResponse(status=resp.status, reason=resp.reason,
                                       headers=client_response_headers(resp.headers, keep_length=True))
            try:
                await empty.prepare(request)
                await empty.write_eof()
            except ConnectionError as exc:
                raise _ClientGone from exc
            ex.finished = self._timer()
            return empty
        if length is not None and length <= WHOLE_BODY_MAX:
            data = await resp.read()
            whole = web.Response(body=data, status=resp.status, reason=resp.reason,
                                    headers=client_response_headers(resp.headers, keep_length=False))
            try:
                await whole.prepare(request)
                await whole.write_eof()
            except ConnectionError as exc:
                raise _ClientGone from exc
            ex.finished = self._timer()
            if parse:
                ex.observer.on_body(data, complete=full)
            return whole
        response = web.StreamResponse(status=resp.status, reason=resp.reason,
                                      headers=client_response_headers(resp.headers, keep_length=True))
        try:
            await response.prepare(request)
        except ConnectionError as exc:
            raise _ClientGone from exc
        kept: list[bytes] = []
        kept_size = 0
        async for data in resp.content.iter_any():
            await _write(response, data)
            if parse:
                kept.append(data)
                kept_size += len(data)
                if kept_size > (TEE_MAX if full else 8192):
                    full = False  # too big to parse whole: keep a tail for the usage member
                    tail = b"".join(kept)[-8192:]
                    kept, kept_size = [tail], len(tail)
        try:
            await response.write_eof()
        except ConnectionError as exc:
            raise _ClientGone from exc
        ex.finished = self._timer()
        if parse:
            ex.observer.on_body(b"".join(kept), complete=full)
        return response

    async def _relay_stream(self, request: web.BaseRequest, resp: aiohttp.ClientResponse, ex: Exchange, *,
                            strip: bool, parse: bool) -> web.StreamResponse:
        response = web.StreamResponse(status=resp.status, reason=resp.reason,
                                      headers=client_response_headers(resp.headers, keep_length=not strip))
        try:
            await response.prepare(request)
        except ConnectionError as exc:
            raise _ClientGone from exc
        observer = ex.observer
        observer.strip_usage = strip
        splitter = SseSplitter()
        timer = self._timer
        async for data in resp.content.iter_any():
            now = timer()
            if strip:
                events = splitter.feed(data)
                keep = [event for event in events if observer.on_event(event, now)]
                if keep:
                    await _write(response, keep[0] if len(keep) == 1 else b"".join(keep))
            else:
                await _write(response, data)
                if parse:
                    for event in splitter.feed(data):
                        observer.on_event(event, now)
        rest = splitter.rest()
        if rest:
            forward = observer.on_event(rest, timer()) if parse or strip else True
            if strip and forward:
                await _write(response, rest)
        try:
            await response.write_eof()
        except ConnectionError as exc:
            raise _ClientGone from exc
        ex.finished = timer()
        return response

    # --- the record ------------------------------------------------------------------------------
    def _emit(self, ex: Exchange) -> None:
        """Build the record and offer it; never raises, never waits."""
        try:
            record, text = build_record(ex, host=self._host, upstream=self._upstream, capture=self._capture,
                                        simulated=self._simulated)
            route = ex.path if ex.path in ROUTE_LABELS else "other"
            self._inst.observe(route=route, model=self._model_label(record.model), status=record.status,
                               ttft=record.ttft_seconds, latency=record.latency_seconds,
                               prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens,
                               cached_tokens=record.cached_tokens)
            rows: list[Row] = [record]
            captured = sample_output(record, text, capture=self._capture, rng=self._rng)
            if captured is not None:
                rows.append(captured)
                self._inst.captured.inc()
        except Exception:
            log.exception("could not build the record of request %s", ex.request_id)
            self._inst.record_error("build")
            return
        try:
            self._sink.offer(rows, drop_reason=_DROP_REASON)
        except Exception:
            log.exception("the store sink refused request %s's record", ex.request_id)
            self._inst.record_error("sink")

    def _model_label(self, model: str) -> str:
        if model in self._model_labels:
            return model
        if len(self._model_labels) < MODEL_LABELS_MAX:
            self._model_labels.add(model)
            return model
        return "other"
