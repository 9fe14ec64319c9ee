"""Which headers a proxy forwards (RFC 7230 section 6.1 hop-by-hop rules)."""

from __future__ import annotations

from collections.abc import Iterable

from multidict import CIMultiDict, CIMultiDictProxy

HOP_BY_HOP: frozenset[str] = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade",
    "proxy-connection",  # not in the RFC, but old clients send it and it must not travel on
})

_REQUEST_DROP: frozenset[str] = HOP_BY_HOP | {"host", "content-length", "expect"}
"""Host is the upstream's; Content-Length is recomputed from the body actually sent; Expect was
answered by the proxy, which sends the body whole."""

_RESPONSE_DROP: frozenset[str] = HOP_BY_HOP | {"content-length"}


def _connection_tokens(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    """Header names listed in Connection are hop-by-hop for this message too."""
    tokens: set[str] = set()
    for value in headers.getall("Connection", ()):
        tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def _filtered(headers: CIMultiDictProxy[str] | CIMultiDict[str], drop: Iterable[str]) -> CIMultiDict[str]:
    dropped = set(drop) | _connection_tokens(headers)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() not in dropped:
            out.add(name, value)
    return out


def upstream_request_headers(headers: CIMultiDictProxy[str] | CIMultiDict[str],
                             *, identity_encoding: bool) -> CIMultiDict[str]:
    """The client's headers minus hop-by-hop ones. With `identity_encoding`, Accept-Encoding is
    dropped so the upstream answers uncompressed and the proxy can read usage from the body."""
    drop = _REQUEST_DROP | {"accept-encoding"} if identity_encoding else _REQUEST_DROP
    return _filtered(headers, drop)


def client_response_headers(headers: CIMultiDictProxy[str] | CIMultiDict[str],
                            *, keep_length: bool) -> CIMultiDict[str]:
    """The upstream's headers minus hop-by-hop ones (multi-valued ones like Set-Cookie kept).
    Content-Length is kept only when the body goes through unchanged."""
    out = _filtered(headers, _RESPONSE_DROP)
    if keep_length and "Content-Length" in headers:
        out["Content-Length"] = headers["Content-Length"]
    return out
