from __future__ import annotations

import itertools

import pytest

from agent.capture.sse import SseSplitter, event_data
from tests.capture.capture_stub import stream_events

STREAM = b"".join(stream_events(include_usage=True))


def _split_at(blob: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *cuts, len(blob)]
    return [blob[a:b] for a, b in itertools.pairwise(edges)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 50, 10_000])
def test_events_come_out_whole_and_byte_identical_however_the_stream_is_cut(size: int) -> None:
    splitter = SseSplitter()
    events = []
    for i in range(0, len(STREAM), size):
        events += splitter.feed(STREAM[i:i + size])
    assert splitter.rest() == b""
    assert b"".join(events) == STREAM
    assert events == stream_events(include_usage=True)


@pytest.mark.parametrize("newline", [b"\r\n", b"\r", b"\n"])
def test_every_line_ending_the_sse_spec_allows_ends_an_event(newline: bytes) -> None:
    blob = b"data: one" + newline + newline + b": keep-alive" + newline + newline + b"data: two" + newline * 2
    for cut in range(1, len(blob)):
        splitter = SseSplitter()
        events = [e for part in _split_at(blob, [cut]) for e in splitter.feed(part)]
        rest = splitter.rest()  # a final lone CR could still be half of a CRLF until the stream ends
        if rest:
            events.append(rest)
        assert b"".join(events) == blob, cut
        assert [event_data(e) for e in events] == [b"one", None, b"two"], cut


def test_a_crlf_split_between_cr_and_lf_is_not_taken_for_a_blank_line() -> None:
    splitter = SseSplitter()
    assert splitter.feed(b"data: a\r\n\r") == []
    assert splitter.feed(b"\ndata: b\r\n\r\n") == [b"data: a\r\n\r\n", b"data: b\r\n\r\n"]


def test_an_unfinished_last_event_is_handed_back_by_rest() -> None:
    splitter = SseSplitter()
    assert splitter.feed(b"data: a\n\ndata: cut-off") == [b"data: a\n\n"]
    assert splitter.rest() == b"data: cut-off"


def test_event_data_joins_multi_line_data_and_strips_one_space() -> None:
    assert event_data(b"event: x\ndata: {\"a\":\ndata:1}\nid: 3\n\n") == b'{"a":\n1}'
    assert event_data(b"data:  two spaces\n\n") == b" two spaces"
    assert event_data(b": comment only\n\n") is None
