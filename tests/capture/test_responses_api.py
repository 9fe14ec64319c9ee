"""The Responses API (/v1/responses) and reasoning tokens. Most tests use OpenAI's documented
shapes (the streamed events, `event:` + `data:` lines, response.output_text.delta ...
response.completed, and the response object with usage input_tokens/output_tokens and their
*_details), since the tiny model of the e2e suite reasons about nothing; the last test replays
vLLM 0.32's own Responses answers captured by `make e2e`. Before this, a Responses body yielded
no tokens at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from agent.capture.observe import OutputObserver
from agent.capture.request_info import inspect_body
from agent.samples import RequestRecord
from tests.capture.capture_stub import ProxyFactory, settle
from tests.support.net import serve

MODEL = "gpt-oss-20b"
USAGE = {"input_tokens": 37, "input_tokens_details": {"cached_tokens": 16}, "output_tokens": 11,
         "output_tokens_details": {"reasoning_tokens": 4}, "total_tokens": 48}


def _response(status: str = "completed", usage: dict[str, Any] | None = None,
              incomplete: str | None = None) -> dict[str, Any]:
    return {
        "id": "resp_67ccd2bed1ec8190b14f964abc054267", "object": "response", "created_at": 1741476542,
        "status": status, "model": MODEL,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "output": [
            {"id": "rs_1", "type": "reasoning", "summary": []},
            {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
             "content": [{"type": "output_text", "text": "Hi there!", "annotations": []}]},
        ],
        "usage": USAGE if usage is None else usage,
    }


def _event(kind: str, **members: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **members})}\n\n".encode()


def stream_events() -> list[bytes]:
    created = {**_response("in_progress", usage={}), "output": [], "usage": None}
    return [
        _event("response.created", sequence_number=0, response=created),
        _event("response.in_progress", sequence_number=1, response=created),
        _event("response.output_item.added", sequence_number=2, output_index=0,
               item={"id": "rs_1", "type": "reasoning", "summary": []}),
        _event("response.reasoning_text.delta", sequence_number=3, item_id="rs_1", output_index=0,
               content_index=0, delta="thinking"),
        _event("response.output_item.added", sequence_number=4, output_index=1,
               item={"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}),
        _event("response.content_part.added", sequence_number=5, item_id="msg_1", output_index=1, content_index=0,
               part={"type": "output_text", "text": "", "annotations": []}),
        _event("response.output_text.delta", sequence_number=6, item_id="msg_1", output_index=1, content_index=0,
               delta="Hi"),
        _event("response.output_text.delta", sequence_number=7, item_id="msg_1", output_index=1, content_index=0,
               delta=" there!"),
        _event("response.output_text.done", sequence_number=8, item_id="msg_1", output_index=1, content_index=0,
               text="Hi there!"),
        _event("response.completed", sequence_number=9, response=_response()),
    ]


def test_a_streamed_response_gives_tokens_cached_reasoning_text_and_first_delta_time() -> None:
    obs = OutputObserver()
    for i, event in enumerate(stream_events()):
        assert obs.on_event(event, float(i))  # nothing is ever held back on this route
    assert (obs.prompt_tokens, obs.completion_tokens, obs.cached_tokens, obs.reasoning_tokens) == (37, 11, 16, 4)
    assert obs.first_at == 3.0  # the reasoning delta: output, as chat's reasoning_content is
    assert (obs.chunks, obs.text(), obs.finish_reason, obs.final_seen) == (3, "Hi there!", "stop", True)


def test_a_whole_response_body_gives_its_usage_text_and_status() -> None:
    obs = OutputObserver()
    obs.on_body(json.dumps(_response()).encode())
    assert (obs.prompt_tokens, obs.completion_tokens, obs.cached_tokens, obs.reasoning_tokens) == (37, 11, 16, 4)
    assert (obs.text(), obs.finish_reason) == ("Hi there!", "stop")


def test_an_incomplete_response_finishes_as_length_and_a_failed_one_as_an_error() -> None:
    cut = OutputObserver()
    cut.on_body(json.dumps(_response("incomplete", incomplete="max_output_tokens")).encode())
    failed = OutputObserver()
    failed.on_event(_event("response.failed", response=_response("failed", usage={})), 0.0)
    assert (cut.finish_reason, cut.error) == ("length", None)
    assert (failed.finish_reason, failed.error, failed.final_seen) == ("error", "upstream_error_event", True)


def test_chat_completion_reasoning_tokens_are_read_from_completion_tokens_details() -> None:
    obs = OutputObserver()
    obs.on_body(json.dumps({"object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 150, "total_tokens": 170,
                  "completion_tokens_details": {"reasoning_tokens": 128},
                  "prompt_tokens_details": {"cached_tokens": 0}}}).encode())
    assert (obs.prompt_tokens, obs.completion_tokens, obs.reasoning_tokens, obs.cached_tokens) == (20, 150, 128, 0)


def test_usage_counts_that_are_not_integers_are_ignored() -> None:
    obs = OutputObserver()
    obs.on_body(json.dumps({"object": "response", "usage": {"input_tokens": True, "output_tokens": "9",
                                                            "output_tokens_details": {"reasoning_tokens": 1.5}}})
                .encode())
    assert (obs.prompt_tokens, obs.completion_tokens, obs.reasoning_tokens) == (None, None, None)


def test_a_responses_request_asking_for_json_through_text_format_is_seen() -> None:
    info = inspect_body(json.dumps({"model": MODEL, "input": "x", "stream": True,
                                    "text": {"format": {"type": "json_schema", "name": "x", "schema": {}}}}).encode())
    assert (info.model, info.stream, info.json_requested) == (MODEL, True, True)


async def _responses_upstream(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):
        return web.json_response(_response())
    assert "stream_options" not in body  # the Responses API reports usage unasked
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for event in stream_events():
        await response.write(event)
    await response.write_eof()
    return response


async def test_the_proxy_records_responses_api_traffic_streamed_and_not(
        make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    app = web.Application()
    app.router.add_post("/v1/responses", _responses_upstream)
    async with serve(app) as base:
        proxy = await make_proxy(base)
        async with client.post(proxy.url + "/v1/responses", json={"model": MODEL, "input": "hi"}) as resp:
            assert (await resp.json())["usage"] == USAGE
        async with client.post(proxy.url + "/v1/responses", json={"model": MODEL, "input": "hi",
                                                                  "stream": True}) as resp:
            assert await resp.read() == b"".join(stream_events())  # forwarded byte for byte
        await settle()
        whole, streamed = [r for r in proxy.sink.rows if isinstance(r, RequestRecord)]
        for record in (whole, streamed):
            assert (record.route, record.model, record.status, record.error) == ("/v1/responses", MODEL, 200, None)
            assert (record.prompt_tokens, record.completion_tokens, record.cached_tokens,
                    record.reasoning_tokens) == (37, 11, 16, 4)
            assert (record.output_chars, record.finish_reason) == (9, "stop")
        assert (whole.stream, whole.ttft_seconds, streamed.stream) == (False, None, True)
        assert streamed.ttft_seconds is not None and streamed.chunks == 3
        assert proxy.value("campwatch_proxy_tokens_total", direction="reasoning") == 8
        assert proxy.value("campwatch_proxy_tokens_total", direction="prompt") == 74


# --- from the real vLLM 0.32 captures (tests/fixtures/vllm/vllm-0.32-responses*) ------------------

_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vllm"


def _captured(name: str) -> bytes:
    return (_FIXTURES / f"vllm-0.32-{name}").read_bytes()


async def _captured_upstream(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):
        return web.Response(body=_captured("responses.json"), content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    await response.prepare(request)
    for part in _captured("responses-stream.sse").split(b"\n\n"):
        if part:
            await response.write(part + b"\n\n")
    await response.write_eof()
    return response


async def test_vllms_own_responses_api_answers_are_recorded_with_their_usage(
        make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    app = web.Application()
    app.router.add_post("/v1/responses", _captured_upstream)
    async with serve(app) as base:
        proxy = await make_proxy(base)
        async with client.post(proxy.url + "/v1/responses", json={"model": "m", "input": "hi"}) as resp:
            whole_body = await resp.json()
        async with client.post(proxy.url + "/v1/responses", json={"model": "m", "input": "hi",
                                                                  "stream": True}) as resp:
            assert await resp.read() == _captured("responses-stream.sse")
        await settle()
        whole, streamed = [r for r in proxy.sink.rows if isinstance(r, RequestRecord)]
        stream_text = _captured("responses-stream.sse")
        completed = json.loads(stream_text.rsplit(b"data: ", 1)[1])["response"]
        deltas = stream_text.count(b"event: response.output_text.delta\n")
        for record, answer in ((whole, whole_body), (streamed, completed)):
            usage = answer["usage"]
            text = answer["output"][0]["content"][0]["text"]
            assert (record.prompt_tokens, record.completion_tokens, record.cached_tokens,
                    record.reasoning_tokens) == (usage["input_tokens"], usage["output_tokens"],
                                                 usage["input_tokens_details"]["cached_tokens"],
                                                 usage["output_tokens_details"]["reasoning_tokens"])
            assert (record.output_chars, record.finish_reason, record.error) == (len(text), "length", None)
        assert streamed.chunks == deltas and streamed.ttft_seconds is not None
        assert whole.ttft_seconds is None
