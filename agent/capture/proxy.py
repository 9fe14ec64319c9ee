"""The OpenAI-compatible reverse proxy: forwards every request to the model server untouched
(streams chunk by chunk as they arrive) and records what each request cost and produced.

It fails open: records go to a non-blocking sink, and any failure to build or hand over a record is
counted, never felt by the client. Upstream failures become OpenAI-format JSON errors (502, 504);
an over-limit body gets 413. It only ever connects to the configured upstream's host and port: a
CONNECT, absolute-form or other non-origin-form request target is refused with 400, and every error
the proxy itself answers (its own, and aiohttp's for requests it cannot parse) is OpenAI-format
JSON. Timeouts: `connect_timeout_s` to connect, `timeout_s` for the longest
silence while waiting for the upstream (before the headers or between two chunks), so a long
generation that keeps streaming is never cut."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus

import aiohttp
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict
from yarl import URL

from agent.capture.caller import CallerLabels, api_key, resolve_salt
from agent.capture.headers import client_response_headers, upstream_request_headers
from agent.capture.instruments import ProxyInstruments
from agent.capture.records import Exchange, build_record, sample_output
from agent.capture.request_info import (
    OUTPUT_SUFFIXES,
    inspect_body,
    needs_usage_injection,
    rejects_stream_options,
    with_usage_requested,
)
from agent.capture.sse import SseSplitter
from agent.capture.usage_chunk import merge_usage_chunk_fields
from agent.config import CaptureSettings, ProxySettings
from agent.errors import ConfigError, Problem
from agent.listen import bind_listeners, bound_port
from agent.samples import Point, Row
from agent.sinks import RowSink
from agent.urls import display_url, scrub_text

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
"""At stop, requests in flight get this long to finish before they are cut (unless stop() says less)."""

_DROP_REASON = "proxy_queue_full"
_CAPTURE_SUFFIXES = (*OUTPUT_SUFFIXES, "/embeddings")


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


def upstream_origin(upstream: str) -> tuple[URL, str]:
    """(scheme://host:port, base path without trailing slash) of the proxy.upstream setting; a URL
    without a port gets its scheme's default (80, 443)."""
    base = URL(upstream)
    if base.scheme not in ("http", "https") or not base.host or base.port is None:
        raise ConfigError("proxy", [Problem("proxy.upstream", "expected an http(s)://host[:port][/path] base URL")])
    origin = URL.build(scheme=base.scheme, host=base.host, port=base.port)
    return origin, base.raw_path.rstrip("/")


def upstream_basic_auth(upstream: str) -> str | None:
    """The Authorization header for credentials written in proxy.upstream (http://user:pass@host);
    the forwarded URL itself never carries them (it is built on the bare origin)."""
    base = URL(upstream)
    if base.user is None:
        return None
    return aiohttp.BasicAuth(base.user, base.password or "").encode()


def upstream_target(origin: URL, base_path: str, raw_target: str, method: str) -> URL | None:
    """The URL to forward a request to: always on `origin`. None for a request target that is not
    origin-form (`/path?query`): CONNECT's authority-form, absolute-form (`http://other/`) and `*`."""
    if method == "CONNECT" or not raw_target.startswith("/"):
        return None
    url = URL(f"{origin}{base_path}{raw_target}", encoded=True)
    if url.raw_host != origin.raw_host or url.port != origin.port or url.scheme != origin.scheme:
        return None  # cannot happen for a target starting with "/"; checked, not assumed
    return url


class _OpenAIErrors(RequestHandler):
    """aiohttp's connection handler, answering requests it cannot parse (and its own 500s) in
    OpenAI format instead of plain text or a traceback."""

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; raises once a response is under way
        if status >= 500:
            response = openai_error(status, "the proxy failed on this request (see its log)", "server_error",
                                    "proxy_error")
        else:
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "Bad Request"
            detail = f" ({exc.__class__.__name__})" if exc is not None else ""
            response = openai_error(status, f"the proxy could not read the HTTP request: {phrase}{detail}",
                                    "invalid_request_error", "malformed_request")
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _OpenAIErrors(self, loop=self._loop, **self._kwargs)


async def _write(response: web.StreamResponse, data: bytes) -> None:
    try:
        await response.write(data)
    except ConnectionError as exc:
        raise _ClientGone from exc


class ProxyServer:
    """Serve the proxy on `proxy.listen` until `stop()`. Records go to `sink` (never awaited); its
    figures are read through `points()` (attach it to the snapshot). `clock` gives record timestamps,
    `timer` durations."""

    def __init__(self, proxy: ProxySettings, capture: CaptureSettings, host: str, sink: RowSink,
                 clock: Callable[[], datetime] = _utc_now, *,
                 timer: Callable[[], float] = time.perf_counter, simulated: bool = False) -> None:
        if not proxy.listen or not proxy.upstream:
            raise ConfigError("proxy", [Problem("proxy.listen / proxy.upstream",
                                                "both must be set to run the proxy")])
        bind_host, _, port = proxy.listen.rpartition(":")
        self._bind_host = bind_host.strip("[]")
        self._bind_port = int(port)
        self._upstream = proxy.upstream.rstrip("/")
        self._origin, self._base_path = upstream_origin(proxy.upstream)
        self._upstream_shown = display_url(self._upstream)  # for logs, error bodies and records
        self._upstream_auth = upstream_basic_auth(proxy.upstream)
        self._settings = proxy
        self._capture = capture
        self._host = host
        self._sink = sink
        self._clock = clock
        self._timer = timer
        self._simulated = simulated
        self._inst = ProxyInstruments()
        self._callers = CallerLabels(resolve_salt(capture))
        self._id_prefix = secrets.token_hex(8)  # request ids: random per process, then a counter
        self._ids = itertools.count()
        self._inject_usage = capture.inject_usage
        self._usage_accepted: bool | None = None
        """What the upstream did with an injected stream_options: None until known, True once a
        request carrying it succeeded (a later 400 is then never about it), False once it was
        rejected for it (injection stops)."""
        self._rng = random.Random()
        self._model_labels: set[str] = set()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None
        self._server: web.Server | None = None
        self._stopping = False
        self._sse_overflow_logged = False
        self.port: int | None = None

    def points(self) -> list[Point]:
        """The proxy's figures (PROXY_METRICS families) as of now; thread-safe."""
        return self._inst.points()

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
        server = _Server(self._serve, handler_cancellation=True, access_log=None)
        self._server = server
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_S)
        await self._runner.setup()
        try:
            sockets = bind_listeners("proxy.listen", self._bind_host, self._bind_port, backlog=1024)
        except Exception:
            await self.stop(0.0)
            raise
        for sock in sockets:
            await web.SockSite(self._runner, sock).start()
        self.port = bound_port(sockets)
        log.info("proxy listening on %s:%s, forwarding to %s", self._bind_host, self.port, self._upstream_shown)
        return self.port

    async def stop(self, timeout_s: float = SHUTDOWN_GRACE_S) -> None:
        """Stop accepting, give requests in flight up to `timeout_s`, then cut them: their client and
        upstream connections are closed, and each is recorded with error `proxy_stopping`."""
        self._stopping = True
        deadline = time.monotonic() + max(timeout_s, 0.0)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            for site in list(runner.sites):
                await site.stop()  # no new connections
            while self._inst.in_flight > 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if self._server is not None:
                # Cut what is still in flight: aborting the client transport cancels its handler, whose
                # cleanup closes the upstream response (the model server sees the disconnect and aborts).
                for handler in list(self._server.connections):
                    handler.force_close()
                    if handler.transport is not None:
                        handler.transport.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runner.cleanup(), timeout=1.0)
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()  # aborts pooled and in-use upstream connections

    # --- one request -----------------------------------------------------------------------------
    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        """The proxy's middleware: refuses request targets it must not forward, and answers any
        exception raised before the response started in OpenAI format."""
        target = upstream_target(self._origin, self._base_path, request.raw_path, request.method)
        if target is None:
            self._inst.error("bad_request_target")
            refused = openai_error(400, "the proxy forwards origin-form requests (a path such as /v1/models) to "
                                   "its configured upstream only; CONNECT, absolute-form and authority-form "
                                   "request targets are refused", "invalid_request_error", "invalid_request_target")
            refused.force_close()
            return refused
        try:
            return await self._handle(request, target)
        except web.HTTPException as exc:
            if request.writer.output_size > 0:
                raise
            kind = "server_error" if exc.status >= 500 else "invalid_request_error"
            return openai_error(exc.status, exc.reason, kind, f"http_{exc.status}")
        except Exception:
            if request.writer.output_size > 0:
                raise
            log.exception("the proxy failed on a %s request", request.method)
            return openai_error(500, "the proxy failed on this request (see its log)", "server_error",
                                "proxy_error")

    async def _handle(self, request: web.BaseRequest, target: URL) -> web.StreamResponse:
        ex = Exchange(ts=self._clock(), started=self._timer(),
                      request_id=f"{self._id_prefix}{next(self._ids):016x}", method=request.method,
                      path=request.path, caller=self._callers(api_key(request.headers)),
                      team=(request.headers.get(self._capture.team_header, "").strip()[:255] or None)
                      if self._capture.team_header else None)
        self._inst.in_flight += 1
        try:
            return await self._forward(request, ex, target)
        except asyncio.CancelledError:
            # handler_cancellation: the client went away while we waited on the upstream. One that
            # closes right after the end of the stream (the sync SDK after [DONE]) got everything.
            if not ex.final_delivered:
                ex.error = ex.error or ("proxy_stopping" if self._stopping else "client_disconnected")
                if ex.error == "client_disconnected":
                    self._inst.error("client_disconnected")
            raise
        finally:
            self._inst.in_flight -= 1
            if ex.finished is None:
                ex.finished = self._timer()
            self._emit(ex)

    async def _forward(self, request: web.BaseRequest, ex: Exchange, url: URL) -> web.StreamResponse:
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
        headers = upstream_request_headers(request.headers,
                                           identity_encoding=ex.path.endswith(_CAPTURE_SUFFIXES))
        if self._upstream_auth is not None and "Authorization" not in headers:
            headers["Authorization"] = self._upstream_auth  # the client's own credentials go first
        data = with_usage_requested(body, ex.info) if inject else (body or None)
        try:
            resp = await self._session.request(request.method, url, headers=headers, data=data,
                                               allow_redirects=False)
            if inject and resp.status in (400, 422) and self._usage_accepted is not True:
                first = await resp.read()
                if not rejects_stream_options(first):
                    # the request's own fault (too long, bad parameter): the client gets this answer
                    ex.status = resp.status
                    ex.stream = ex.info.stream
                    return await self._send_whole(request, resp, first, ex, parse=False)
                resp = await self._retry_without_injection(resp, request.method, url, headers, body)
                inject = self._inject_usage
            elif inject and resp.status < 400:
                self._usage_accepted = True
        except TimeoutError:
            return self._fail(ex, 504, "upstream_timeout", "upstream_error", "upstream_timeout",
                              f"the model server did not answer within {self._settings.timeout_s} s "
                              "(proxy.timeout_s)")
        except aiohttp.ClientConnectorError as exc:
            return self._fail(ex, 502, "upstream_unavailable", "upstream_error", "upstream_unavailable",
                              f"cannot connect to the model server at {self._upstream_shown}: {exc.os_error}")
        except aiohttp.ClientError as exc:
            return self._fail(ex, 502, "upstream_broken", "upstream_error", "upstream_broken",
                              f"the model server at {self._upstream_shown} closed the connection: "
                              f"{scrub_text(str(exc))}")
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
        first.release()
        resp = await self._session.request(method, url, headers=headers, data=body or None,
                                           allow_redirects=False)
        if resp.status < 400:
            self._inject_usage = False
            self._usage_accepted = False
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
            if ex.final_delivered:  # the client closed after the end of the stream: it is complete
                ex.finished = self._timer()
                return web.Response(status=ex.status)  # not sent: the client is gone
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
        full = parse and ex.path.endswith(OUTPUT_SUFFIXES)  # output text matters; elsewhere only usage
        if request.method == "HEAD" or resp.status in (204, 304):
            # No body, but the headers (Content-Length included) describe the resource: keep them all.
            empty = web.StreamResponse(status=resp.status, reason=resp.reason,
                                       headers=client_response_headers(resp.headers, keep_length=True))
            return await self._send_complete(request, empty, ex)
        if length is not None and length <= WHOLE_BODY_MAX:
            return await self._send_whole(request, resp, await resp.read(), ex, parse=parse, full=full)
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

    async def _send_whole(self, request: web.BaseRequest, resp: aiohttp.ClientResponse, data: bytes,
                          ex: Exchange, *, parse: bool, full: bool = False) -> web.StreamResponse:
        """Send a body already read from the upstream in one write."""
        whole = web.Response(body=data, status=resp.status, reason=resp.reason,
                             headers=client_response_headers(resp.headers, keep_length=False))
        await self._send_complete(request, whole, ex)
        if parse:
            ex.observer.on_body(data, complete=full)
        return whole

    async def _send_complete(self, request: web.BaseRequest, response: web.StreamResponse,
                             ex: Exchange) -> web.StreamResponse:
        """Send a response whose body (if any) it already holds, and note when it finished."""
        try:
            await response.prepare(request)
            await response.write_eof()
        except ConnectionError as exc:
            raise _ClientGone from exc
        ex.finished = self._timer()
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
        splitter = SseSplitter(self._capture.max_sse_event_bytes)
        timer = self._timer
        held: bytes | None = None  # stripping: choice 0's finish chunk, until the next event shows
        # whether it is the usage chunk, whose extra members (system_fingerprint) it then takes over
        async for data in resp.content.iter_any():
            now = timer()
            if splitter.overflowed:  # an event past the limit: the rest of the stream goes through as is
                await _write(response, data)
            elif strip:
                keep: list[bytes] = []
                for event in splitter.feed(data):
                    forward = observer.on_event(event, now)
                    if held is not None:
                        keep.append(held if forward else merge_usage_chunk_fields(held, event))
                        held = None
                    if forward:
                        if observer.last_finished:
                            held = event
                        else:
                            keep.append(event)
                if splitter.overflowed:
                    if held is not None:
                        keep.append(held)
                        held = None
                    keep.append(self._sse_overflow(ex, splitter))
                if keep:
                    await _write(response, keep[0] if len(keep) == 1 else b"".join(keep))
            else:
                await _write(response, data)
                if parse:
                    for event in splitter.feed(data):
                        observer.on_event(event, now)
                    if splitter.overflowed:
                        self._sse_overflow(ex, splitter)
            if observer.final_seen:
                ex.final_delivered = True  # written above: [DONE] or the Responses end event is out
        if held is not None:
            await _write(response, held)
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

    def _sse_overflow(self, ex: Exchange, splitter: SseSplitter) -> bytes:
        """An event grew past capture.max_sse_event_bytes: stop parsing this stream, mark its record,
        and return the held bytes for the caller to pass on."""
        ex.error = ex.error or "sse_event_too_large"
        self._inst.error("sse_event_too_large")
        if self._sse_overflow_logged:
            return splitter.rest()
        self._sse_overflow_logged = True
        log.warning("request %s: a streamed event exceeds capture.max_sse_event_bytes (%d bytes); the rest of "
                    "the stream passes through unparsed and its record has no usage or output figures (logged once; "
                    "counted in campwatch_proxy_errors_total{reason=\"sse_event_too_large\"})",
                    ex.request_id, splitter.max_event_bytes)
        return splitter.rest()

    # --- the record ------------------------------------------------------------------------------
    def _emit(self, ex: Exchange) -> None:
        """Build the record and offer it; never raises, never waits."""
        try:
            record, text = build_record(ex, host=self._host, upstream=self._upstream_shown, capture=self._capture,
                                        simulated=self._simulated)
            route = ex.path if ex.path in ROUTE_LABELS else "other"
            model = self._model_label(record.model)
            self._inst.observe(route=route, model=model, status=record.status,
                               ttft=record.ttft_seconds, latency=record.latency_seconds,
                               prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens,
                               cached_tokens=record.cached_tokens)
            if record.reasoning_tokens:
                self._inst.reasoning_tokens(record.reasoning_tokens)
            if record.error == "client_disconnected":
                self._inst.client_abort(model)
            rows: list[Row] = [record]
            captured = sample_output(record, text, capture=self._capture, rng=self._rng)
            if captured is not None:
                rows.append(captured)
                self._inst.output_captured()
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
