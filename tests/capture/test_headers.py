from __future__ import annotations

from multidict import CIMultiDict

from agent.capture.headers import client_response_headers, upstream_request_headers


def test_hop_by_hop_and_connection_listed_headers_are_not_forwarded() -> None:
    incoming = CIMultiDict([("Host", "proxy:1"), ("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"),
                            ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Transfer-Encoding", "chunked"),
                            ("Proxy-Authorization", "Basic x"), ("Content-Length", "10"),
                            ("Authorization", "Bearer k"), ("X-Trace", "a"), ("X-Trace", "b"),
                            ("Accept-Encoding", "gzip")])
    out = upstream_request_headers(incoming, identity_encoding=False)
    assert sorted(out.items()) == [("Accept-Encoding", "gzip"), ("Authorization", "Bearer k"),
                                   ("X-Trace", "a"), ("X-Trace", "b")]
    assert "Accept-Encoding" not in upstream_request_headers(incoming, identity_encoding=True)


def test_response_headers_keep_duplicates_and_length_only_when_asked() -> None:
    upstream = CIMultiDict([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Content-Length", "5"),
                            ("Transfer-Encoding", "chunked"), ("Content-Type", "application/json")])
    kept = client_response_headers(upstream, keep_length=True)
    assert kept.getall("Set-Cookie") == ["a=1", "b=2"]
    assert kept["Content-Length"] == "5" and "Transfer-Encoding" not in kept
    assert "Content-Length" not in client_response_headers(upstream, keep_length=False)
