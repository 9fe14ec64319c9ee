"""Server-sent events: split a byte stream into whole events without altering a byte.

The proxy forwards the raw bytes of each event (or drops one, for the injected usage chunk), so the
splitter returns raw event bytes with their terminating blank line; `event_data` extracts the
payload of the `data:` lines for parsing.

Splitting is linear in the bytes fed: each byte is scanned once (plus at most 3 bytes of overlap per
chunk, where a blank line may straddle two chunks), and bytes of an unfinished event are appended,
never re-copied. An event that grows past `max_event_bytes` ends splitting for the stream: the
splitter sets `overflowed` and hands its held bytes back through `rest()`, and the caller passes the
rest of the stream through unparsed."""

from __future__ import annotations

import re
from typing import cast

_BOUNDARY = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
"""A blank line: two line ends, each CRLF, LF or a lone CR (the three the SSE spec allows)."""

MAX_EVENT_BYTES = 1 << 20
"""Default per-event limit (capture.max_sse_event_bytes). OpenAI-compatible servers send events of
a few hundred bytes; one past this limit is a broken or hostile stream."""

_OVERLAP = 3
"""A blank line is at most 4 bytes (CRLF CRLF): a search resumes 3 bytes before the old end."""


class SseSplitter:
    """Incremental event splitter: `feed` returns the events completed by the new bytes.

    `scanned` counts the bytes examined for boundaries (work done), `overflowed` turns True once
    an unfinished event exceeds `max_event_bytes`; after that `feed` must not be called again."""

    __slots__ = ("_buf", "_cr", "_resume", "max_event_bytes", "overflowed", "scanned")

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        if max_event_bytes <= 0:
            raise ValueError(f"max_event_bytes: expected a positive byte count, got {max_event_bytes}")
        self.max_event_bytes = max_event_bytes
        self._buf = bytearray()
        self._resume = 0  # where the next boundary search starts: earlier bytes hold none
        self._cr = False  # a CR is among the held bytes (the slower three-line-end search is needed)
        self.scanned = 0
        self.overflowed = False

    def feed(self, data: bytes) -> list[bytes]:
        if self.overflowed:
            raise RuntimeError("the SSE splitter overflowed: pass the stream through instead of feeding it")
        held = self._buf
        old = len(held)
        if old:
            held += data
            buf: bytes | bytearray = held
        else:
            buf = data  # nothing held (the usual case): split the chunk itself, no copy
        cr = self._cr or b"\r" in data
        events: list[bytes | bytearray] = []
        pos = self._resume
        start = 0
        size = len(buf)
        self.scanned += size - pos  # each search below resumes where the last one ended
        if not cr:  # the common case (vLLM, OpenAI): LF only, a plain find is enough
            find = buf.find
            while (end := find(b"\n\n", pos)) >= 0:
                pos = end + 2
                events.append(buf[start:pos])
                start = pos
        else:
            search = _BOUNDARY.search
            while (match := search(buf, pos)) is not None:
                pos = match.end()
                if pos == size and buf[-1] == 13:
                    break  # a CR at the very end may be half of a CRLF still in flight
                events.append(buf[start:pos])
                start = pos
        if old:
            if events:
                events = [bytes(event) for event in events]  # slices of the held bytearray
                del held[:start]
        elif start < size:
            held += memoryview(data)[start:]
        if cr and start > old:  # all that is held arrived in this chunk: look again for a CR
            cr = b"\r" in held
            self.scanned += len(held)
        self._cr = cr
        self._resume = max(len(held) - _OVERLAP, 0)
        if len(held) > self.max_event_bytes:
            self.overflowed = True
        return cast("list[bytes]", events)  # slices of `data`, or converted above

    def rest(self) -> bytes:
        """Bytes of an event not finished (at the end of the stream, clients discard it and we forward
        it as is; after an overflow, the held bytes to pass through)."""
        rest = bytes(self._buf)
        self._buf = bytearray()
        self._resume = 0
        self._cr = False
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
