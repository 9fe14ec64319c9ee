"""What the client would have got without the injected usage request.

Asked for `stream_options.include_usage`, vLLM sends the usage in a last chunk with `choices: []`
and moves members such as `system_fingerprint` from the finish chunk into it. The proxy hides
that chunk from a client that did not ask for it, so the members it carries beside the usage go
back into the finish chunk, spliced before its closing brace: every byte the upstream sent in the
finish chunk stays as it was."""

from __future__ import annotations

import json

from agent.capture.sse import event_data

_USAGE_ONLY = frozenset({"id", "object", "created", "model", "choices", "usage"})
"""Members every chunk carries, or that only the usage chunk is about: never moved."""


def merge_usage_chunk_fields(finish_event: bytes, usage_event: bytes) -> bytes:
    """`finish_event` with the usage chunk's other non-null members it lacks (or has as null).
    Unchanged, byte for byte, when there are none or either event is not a one-line JSON chunk."""
    finish_payload = event_data(finish_event)
    usage_payload = event_data(usage_event)
    if finish_payload is None or usage_payload is None:
        return finish_event
    try:
        finish = json.loads(finish_payload)
        usage = json.loads(usage_payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return finish_event
    if not isinstance(finish, dict) or not isinstance(usage, dict):
        return finish_event
    moved = {key: value for key, value in usage.items()
             if key not in _USAGE_ONLY and value is not None and finish.get(key) is None}
    if not moved:
        return finish_event
    if any(key in finish for key in moved):  # present as null: rewrite the chunk
        body = json.dumps({**finish, **moved}, ensure_ascii=False, separators=(",", ":")).encode()
    else:
        close = finish_payload.rstrip().rfind(b"}")
        extra = json.dumps(moved, ensure_ascii=False, separators=(",", ":")).encode()[1:-1]
        body = finish_payload[:close] + b"," + extra + finish_payload[close:]
    return b"data: " + body + b"\n\n"
