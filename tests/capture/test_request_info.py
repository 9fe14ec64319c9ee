from __future__ import annotations

import json

from agent.capture.request_info import NOT_JSON, inspect_body, needs_usage_injection, with_usage_requested

CHAT = "/v1/chat/completions"


def test_model_stream_and_json_format_are_read_from_the_body() -> None:
    info = inspect_body(b'{"model": "m", "stream": true, "response_format": {"type": "json_object"}}')
    assert (info.model, info.stream, info.wants_usage, info.json_requested) == ("m", True, False, True)


def test_bodies_that_are_not_json_objects_are_recognised_without_raising() -> None:
    for raw in (b"", b"hello", b"[1, 2]", b"{broken", b"\xff\xfe{", b'"str"'):
        assert inspect_body(raw) == NOT_JSON


def test_injection_splices_the_option_and_leaves_every_other_byte_as_sent() -> None:
    raw = '  {"model":"m",  "stream":true, "messages":[{"role":"user","content":"é\\u00e9 1e5"}]}'.encode()
    info = inspect_body(raw)
    assert needs_usage_injection(CHAT, info)
    injected = with_usage_requested(raw, info)
    assert injected.replace(b'"stream_options":{"include_usage":true},', b"") == raw
    assert json.loads(injected)["stream_options"] == {"include_usage": True}


def test_injection_keeps_the_clients_other_stream_options() -> None:
    raw = b'{"model":"m","stream":true,"stream_options":{"continuous_usage_stats":true,"include_usage":false}}'
    body = json.loads(with_usage_requested(raw, inspect_body(raw)))
    assert body["stream_options"] == {"continuous_usage_stats": True, "include_usage": True}


def test_no_injection_when_usage_was_asked_not_streaming_or_another_route() -> None:
    asked = inspect_body(b'{"stream":true,"stream_options":{"include_usage":true}}')
    assert not needs_usage_injection(CHAT, asked)
    assert not needs_usage_injection(CHAT, inspect_body(b'{"stream":false}'))
    assert not needs_usage_injection("/v1/embeddings", inspect_body(b'{"stream":true}'))
    assert needs_usage_injection("/v1/completions", inspect_body(b'{"stream":true}'))
