from __future__ import annotations

import json

from agent.capture.observe import OutputObserver
from tests.capture.capture_stub import OUTPUT, OUTPUT_WORDS, USAGE, chat_chunk, sse, stream_events


def _feed(observer: OutputObserver, events: list[bytes]) -> list[bool]:
    return [observer.on_event(event, float(i)) for i, event in enumerate(events)]


def test_a_streamed_chat_yields_usage_text_finish_reason_and_chunk_timing() -> None:
    observer = OutputObserver()
    _feed(observer, stream_events(include_usage=True))
    assert (observer.prompt_tokens, observer.completion_tokens, observer.cached_tokens) == (11, 7, 3)
    assert observer.text() == OUTPUT
    assert observer.finish_reason == "stop"
    assert observer.chunks == len(OUTPUT_WORDS)
    assert observer.first_at == 1.0  # the role-only chunk carries no token
    assert observer.gap_stats() == (1.0, 1.0, 1.0)
    assert observer.done


def test_only_the_usage_only_chunk_is_withheld_when_the_proxy_asked_for_usage() -> None:
    events = stream_events(include_usage=True)
    keep = _feed(OutputObserver(strip_usage=True), events)
    assert [e for e, k in zip(events, keep, strict=True) if not k] == [events[-2]]
    assert all(_feed(OutputObserver(strip_usage=False), events))


def test_completions_text_and_reasoning_chunks_count_as_output() -> None:
    observer = OutputObserver()
    reasoning = {"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}, "finish_reason": None}]}
    text = {"choices": [{"index": 0, "text": "hello", "finish_reason": "length"}]}
    other_choice = {"choices": [{"index": 1, "text": "ignored", "finish_reason": None}]}
    _feed(observer, [sse(reasoning), sse(text), sse(other_choice)])
    assert observer.chunks == 2
    assert observer.text() == "hello"
    assert observer.finish_reason == "length"


def test_garbage_events_and_error_events_never_raise() -> None:
    observer = OutputObserver()
    keep = _feed(observer, [b"data: {not json\n\n", b"data: [1,2]\n\n", b": ping\n\n",
                            sse({"error": {"message": "boom"}}), sse(chat_chunk("ok"))])
    assert all(keep)
    assert observer.error == "upstream_error_event"
    assert observer.text() == "ok"


def test_a_whole_chat_body_gives_usage_text_and_refusal_member() -> None:
    observer = OutputObserver()
    body = {"choices": [{"index": 0, "message": {"content": "no", "refusal": "I won't"}, "finish_reason": "stop"}],
            "usage": USAGE}
    observer.on_body(json.dumps(body).encode())
    assert (observer.prompt_tokens, observer.text(), observer.refusal_field) == (11, "no", True)


def test_an_oversized_body_still_gives_the_usage_found_in_its_tail() -> None:
    observer = OutputObserver()
    body = json.dumps({"data": [{"embedding": [0.5] * 50_000}], "usage": {"prompt_tokens": 42, "total_tokens": 42}})
    observer.on_body(body.encode()[-5000:], complete=False)
    assert observer.prompt_tokens == 42
    assert not observer.has_output


def test_gap_p99_is_the_nearest_rank() -> None:
    observer = OutputObserver()
    observer.gaps = [float(i) for i in range(1, 101)]
    assert observer.gap_stats() == (50.5, 99.0, 100.0)
