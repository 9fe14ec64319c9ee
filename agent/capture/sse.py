"""Server-sent events: split a byte stream into whole events without altering a byte.

The proxy forwards the raw bytes of each event (or drops one, for the injected usage chunk), so the
splitter returns raw event bytes with their terminating blank line; `event_data` extracts the
payload of the `data:` lines for parsing."""

from __future__ import annotations

import re

_BOUNDARY = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
"""A blank line: two line ends, each CRLF, LF or a lone CR (the three the SSE spec allows)."""


class SseSplitter:
    """Incremental event splitter: `feed` returns the events completed by the new bytes."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        events: list[bytes] = []
        start = 0
        if b"\r" not in buf:  # the common case (vLLM, OpenAI): LF only, a plain find is enough
            while True:
                end = buf.find(b"\n\n", start)
                if end < 0:
                    break
                events.append(buf[start:end + 2])
                start = end + 2
        else:
            while True:
                match = _BOUNDARY.search(buf, start)
                if match is None:
                    break
                if match.end() == len(buf) and buf.endswith(b"\r"):
                    break  # a CR at the very end may be half of a CRLF still in flight
                events.append(buf[start:match.end()])
                start = match.end()
        self._buf = buf[start:] if start < len(buf) else b""
        return events

    def rest(self) -> bytes:
        """Bytes of an event the stream never finished (clients discard it; we forward it as is)."""
        rest, self._buf = self._buf, b""
        return rest


def event_data(event: bytes) -> bytes | None:
    """The event's data (its `data:` lines joined by LF), or None when it has no data line."""
    if event.startswith(b"data: ") and event.count(b"\n") <= 2 and b"\r" not in event:
        return event[6:].rstrip(b"\n")  # one-line event, the shape every OpenAI-compatible server sends
    parts: list[bytes] = []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(parts) if parts else None
