"""What the proxy reads from an OpenAI-style request body, and the one change it may make to it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent.capture.jsonobj import json_object

COMPLETION_SUFFIXES: tuple[str, ...] = ("/chat/completions", "/completions")
"""Routes whose streaming requests get `stream_options.include_usage` added upstream."""

OUTPUT_SUFFIXES: tuple[str, ...] = (*COMPLETION_SUFFIXES, "/responses")
"""Routes whose responses carry generated text (the Responses API always reports its usage)."""

_JSON_FORMATS = frozenset({"json_object", "json_schema"})


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The request fields the record needs. `body` is None when the body is not a JSON object."""

    model: str = ""
    stream: bool = False
    wants_usage: bool = False
    json_requested: bool = False
    body: dict[str, Any] | None = field(default=None, compare=False, repr=False)


NOT_JSON = RequestInfo()


def inspect_body(raw: bytes) -> RequestInfo:
    """Read model, stream, stream_options.include_usage and response_format. Never raises: a body
    that is not a JSON object gives NOT_JSON and is forwarded untouched."""
    head = raw[:64].lstrip(b" \t\r\n\xef\xbb\xbf")
    if not head.startswith(b"{"):
        return NOT_JSON
    body = json_object(raw)
    if body is None:
        return NOT_JSON
    model = body.get("model")
    options = body.get("stream_options")
    response_format = body.get("response_format")
    text = body.get("text")  # the Responses API's text.format
    text_format = text.get("format") if isinstance(text, dict) else None
    json_requested = (
        (isinstance(response_format, dict) and response_format.get("type") in _JSON_FORMATS)
        or (isinstance(text_format, dict) and text_format.get("type") in _JSON_FORMATS)
        or body.get("guided_json") is not None  # vLLM's structured-output extension
    )
    return RequestInfo(
        model=model if isinstance(model, str) else "",
        stream=body.get("stream") is True,
        wants_usage=isinstance(options, dict) and bool(options.get("include_usage")),
        json_requested=json_requested,
        body=body,
    )


def needs_usage_injection(path: str, info: RequestInfo) -> bool:
    return (info.body is not None and info.stream and not info.wants_usage
            and path.endswith(COMPLETION_SUFFIXES))


def with_usage_requested(raw: bytes, info: RequestInfo) -> bytes:
    """The body with `stream_options.include_usage` set. When the client sent no stream_options the
    member is spliced in after the opening brace, so every other byte stays as the client sent it."""
    assert info.body is not None
    options = info.body.get("stream_options")
    if options is None and "stream_options" not in info.body:
        brace = raw.index(b"{")
        return raw[:brace + 1] + b'"stream_options":{"include_usage":true},' + raw[brace + 1:]
    merged = dict(info.body)
    merged["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return json.dumps(merged, ensure_ascii=False, separators=(",", ":")).encode()


_STREAM_OPTION_WORDS = (b"stream_options", b"include_usage")


def rejects_stream_options(error_body: bytes) -> bool:
    """An upstream's 400/422 answer names stream_options: it is about the member the proxy added
    (an older server or a strict schema), not about the client's own request."""
    head = error_body[:8192]
    return any(word in head for word in _STREAM_OPTION_WORDS)
