"""The proxy connects to its configured upstream only, and every error it answers is OpenAI format
(issue 9, finding 8). Raw sockets send what no HTTP client library would; a canary listener on
another loopback address must receive nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from yarl import URL

from agent.capture.proxy import upstream_origin, upstream_target
from agent.errors import ConfigError
from tests.capture.capture_stub import ProxyFactory, StubUpstream, settle


class Canary:
    """A TCP listener that counts connections and reads nothing."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str) -> None:
        def accepted(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()

        self.server = await asyncio.start_server(accepted, host, 0)
        self.port = self.server.sockets[0].getsockname()[1]


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    listener = Canary()
    await listener.start("127.0.0.10")
    yield listener
    assert listener.server is not None
    listener.server.close()
    await listener.server.wait_closed()


async def _raw(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` as is; (status, headers, body) of the answer (read to the close)."""
    target = URL(url)
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split(" ")[1]), headers, body


def _openai_error(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert "Traceback" not in error["message"]
    return dict(error)


@pytest.mark.parametrize("request_line", [
    "CONNECT 0:{port} HTTP/1.1",  # the reproduction: appended to http://127.0.0.1 it named 127.0.0.10
    "CONNECT 127.0.0.10:{port} HTTP/1.1",
    "GET http://127.0.0.10:{port}/v1/models HTTP/1.1",  # absolute-form
    "POST http://127.0.0.10:{port}/v1/chat/completions HTTP/1.1",
    "GET 127.0.0.10:{port} HTTP/1.1",  # authority-form outside CONNECT
    "OPTIONS * HTTP/1.1",
])
async def test_non_origin_form_requests_are_refused_with_400_and_reach_nobody(
        request_line: str, canary: Canary, make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy("http://127.0.0.1")  # no port: the one that was exploitable
    line = request_line.format(port=canary.port)
    status, headers, body = await _raw(proxy.url, f"{line}\r\nHost: 127.0.0.10:{canary.port}\r\nConnection: close\r\n"
                                                  "Content-Length: 0\r\n\r\n".encode())
    await asyncio.sleep(0.2)  # an outgoing connection, had there been one, would have landed by now
    assert canary.connections == 0
    assert status == 400
    error = _openai_error(headers, body)
    assert error["type"] == "invalid_request_error"


async def test_a_refused_target_is_counted_and_origin_form_requests_still_go_through(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory) -> None:
    upstream, base = stub
    proxy = await make_proxy(base)
    status, _, _ = await _raw(proxy.url, b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400
    status, _, _ = await _raw(proxy.url, b"GET /v1/models?x=1 HTTP/1.1\r\nHost: evil.example\r\n"
                                         b"Connection: close\r\n\r\n")
    assert status == 200
    assert [s.path_qs for s in upstream.seen] == ["/v1/models?x=1"]
    assert dict(upstream.seen[0].headers)["Host"] == f"127.0.0.1:{upstream.port}"  # the upstream's, not the client's
    await settle()
    assert proxy.value("campwatch_proxy_errors_total", reason="bad_request_target") == 1


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",
    b"GET /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
])
async def test_requests_aiohttp_cannot_parse_get_an_openai_error_not_plain_text(
        raw: bytes, make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy("http://127.0.0.1:9")
    status, headers, body = await _raw(proxy.url, raw)
    assert 400 <= status < 500
    assert _openai_error(headers, body)["code"] == "malformed_request"


async def test_a_failure_inside_the_proxy_is_a_500_in_openai_format_without_a_traceback(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    _, base = stub
    proxy = await make_proxy(base)

    async def broken(*_: Any) -> None:
        raise RuntimeError("internal detail that must not reach the client")

    monkeypatch.setattr(proxy.server, "_forward", broken)
    status, headers, body = await _raw(proxy.url, b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 500
    error = _openai_error(headers, body)
    assert (error["type"], error["code"]) == ("server_error", "proxy_error")
    assert "internal detail" not in body.decode()


@pytest.mark.parametrize(("upstream", "host", "port", "base_path"), [
    ("http://127.0.0.1", "127.0.0.1", 80, ""),
    ("https://models.internal/", "models.internal", 443, ""),
    ("http://[::1]:8000/base/", "::1", 8000, "/base"),
])
def test_an_upstream_without_a_port_means_the_schemes_default(upstream: str, host: str, port: int,
                                                              base_path: str) -> None:
    origin, path = upstream_origin(upstream)
    assert (origin.host, origin.port, origin.path, path) == (host, port, "/", base_path)


def test_every_forwarded_url_is_on_the_upstream_origin() -> None:
    origin, base = upstream_origin("http://127.0.0.1")
    url = upstream_target(origin, base, "/v1/models?a=%20b", "GET")
    assert url is not None and (url.host, url.port, url.raw_path_qs) == ("127.0.0.1", 80, "/v1/models?a=%20b")
    odd = upstream_target(origin, base, "//evil.example:1/x@y", "GET")
    assert odd is not None and (odd.host, odd.port, odd.raw_path) == ("127.0.0.1", 80, "//evil.example:1/x@y")
    origin, base = upstream_origin("http://10.0.0.5:8000/base")
    url = upstream_target(origin, base, "/v1/models", "GET")
    assert url is not None and (url.host, url.port, url.raw_path) == ("10.0.0.5", 8000, "/base/v1/models")
    for target, method in [("0:43147", "CONNECT"), ("/x", "CONNECT"), ("http://other/", "GET"), ("*", "OPTIONS"),
                           ("other:81", "GET"), ("", "GET")]:
        assert upstream_target(origin, base, target, method) is None, target


def test_an_upstream_without_a_host_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"proxy\.upstream"):
        upstream_origin("http://")
