"""The proxy forwards everything untouched: paths, methods, bodies, statuses, headers, streams."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from agent.samples import RequestRecord
from agent.sim.model_server import SimServerConfig, SimulatedModelServer, start_server
from tests.capture.capture_stub import MODEL, OUTPUT, ProxyFactory, StubUpstream, settle, stream_events

CHAT = "/v1/chat/completions"


def _records(proxy_sink: object) -> list[RequestRecord]:
    return [r for r in proxy_sink.rows if isinstance(r, RequestRecord)]  # type: ignore[attr-defined]


async def test_any_path_method_query_and_body_reach_the_upstream_as_sent(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    upstream, base = stub
    proxy = await make_proxy(base)
    odd_body = b"\x00\xffnot json at all \r\n{"
    async with client.request("PATCH", proxy.url + "/custom/thing?x=1&y=%20z", data=odd_body,
                              headers={"Content-Type": "application/x-odd", "X-Trace": "t1"}) as resp:
        assert resp.status == 200
        assert (await resp.json())["path_qs"] == "/custom/thing?x=1&y=%20z"
    seen = upstream.seen[-1]
    assert (seen.method, seen.body) == ("PATCH", odd_body)
    headers = dict(seen.headers)
    assert headers["Content-Type"] == "application/x-odd" and headers["X-Trace"] == "t1"
    assert headers["Content-Length"] == str(len(odd_body))
    assert "User-Agent" in headers  # the client's own, not one the proxy adds
    assert headers["User-Agent"].startswith("Python/") or "aiohttp" in headers["User-Agent"]


async def test_a_json_body_is_forwarded_byte_for_byte_when_nothing_is_injected(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    upstream, base = stub
    proxy = await make_proxy(base)
    raw = b'{ "model" : "stub/model",\n "messages":[{"role":"user","content":"\\u00e9 1.0e5"}], "stream": false }'
    async with client.post(proxy.url + CHAT, data=raw, headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 200
    assert upstream.seen[-1].body == raw


async def test_status_codes_and_headers_come_back_with_hop_by_hop_ones_removed(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    upstream, base = stub
    proxy = await make_proxy(base)
    async with client.get(proxy.url + "/anything?code=418", headers={
            "X-Stub-Mode": "status", "Connection": "keep-alive, X-Private", "X-Private": "secret"}) as resp:
        assert resp.status == 418
        assert await resp.text() == "teapot body"
        assert resp.headers["X-Custom"] == "kept"
        assert resp.headers.getall("Set-Cookie") == ["a=1", "b=2"]
        assert "X-Hop" not in resp.headers and "Keep-Alive" not in resp.headers
    assert "X-Private" not in dict(upstream.seen[-1].headers)
    await settle()
    assert _records(proxy.sink)[-1].status == 418


async def test_models_and_embeddings_pass_through_and_embeddings_usage_is_recorded(
        sim: tuple[object, str], stub: tuple[StubUpstream, str], make_proxy: ProxyFactory,
        client: aiohttp.ClientSession) -> None:
    _, sim_base = sim
    proxy = await make_proxy(sim_base)
    async with client.get(proxy.url + "/v1/models") as resp:
        direct = await (await client.get(sim_base + "/v1/models")).json()
        assert (await resp.json())["data"][0]["id"] == direct["data"][0]["id"]
    _, stub_base = stub
    proxy2 = await make_proxy(stub_base)
    async with client.post(proxy2.url + "/v1/embeddings", json={"model": MODEL, "input": "hi"}) as resp:
        assert len((await resp.json())["data"][0]["embedding"]) == 64
    await settle()
    record = _records(proxy2.sink)[-1]
    assert (record.route, record.model, record.prompt_tokens, record.output_chars) == ("/v1/embeddings", MODEL, 9, None)


async def test_a_stream_without_usage_asked_gets_exact_counts_and_the_client_sees_no_extra_chunk(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    upstream, base = stub
    proxy = await make_proxy(base)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with client.post(proxy.url + CHAT, json=body) as resp:
        received = await resp.read()
        assert "Content-Length" not in resp.headers
    assert json.loads(upstream.seen[-1].body)["stream_options"] == {"include_usage": True}
    expected = b"".join(e for e in stream_events(include_usage=True) if b'"choices": []' not in e)
    assert received == expected
    await settle()
    record = _records(proxy.sink)[-1]
    assert (record.prompt_tokens, record.completion_tokens, record.cached_tokens) == (11, 7, 3)
    assert record.stream and record.finish_reason == "stop" and record.output_chars == len(OUTPUT)


async def test_a_stream_that_asked_for_usage_is_passed_through_unchanged(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    upstream, base = stub
    proxy = await make_proxy(base)
    raw = b'{"model":"stub/model","stream":true,"stream_options":{"include_usage":true}}'
    async with client.post(proxy.url + CHAT, data=raw) as resp:
        assert await resp.read() == b"".join(stream_events(include_usage=True))
    assert upstream.seen[-1].body == raw


async def test_events_cut_at_arbitrary_bytes_are_reassembled_and_still_stripped(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = stub
    proxy = await make_proxy(base)
    async with client.post(proxy.url + CHAT, json={"model": MODEL, "stream": True},
                           headers={"X-Stub-Mode": "split"}) as resp:
        received = await resp.read()
    assert received == b"".join(e for e in stream_events(include_usage=True) if b'"choices": []' not in e)
    await settle()
    assert _records(proxy.sink)[-1].completion_tokens == 7


async def test_chunks_reach_the_client_before_the_upstream_has_sent_the_rest(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    upstream, base = stub
    proxy = await make_proxy(base)
    async with client.post(proxy.url + CHAT, json={"model": MODEL, "stream": True},
                           headers={"X-Stub-Mode": "gated"}) as resp:
        first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), timeout=2)
        assert first == stream_events(include_usage=True)[0]  # arrived while the upstream still waits
        upstream.gate.set()
        rest = await resp.read()
    assert rest.endswith(b"data: [DONE]\n\n")


async def test_an_upstream_that_rejects_stream_options_still_serves_the_clients_request(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    upstream, base = stub
    proxy = await make_proxy(base)
    for _ in range(2):
        async with client.post(proxy.url + CHAT, json={"model": MODEL, "stream": True},
                               headers={"X-Stub-Mode": "reject_stream_options"}) as resp:
            assert resp.status == 200
            assert (await resp.read()) == b"".join(stream_events(include_usage=False))
    # the first request was tried with and without injection; afterwards injection is off
    assert [b"stream_options" in s.body for s in upstream.seen] == [True, False, False]


async def test_non_streaming_chat_and_completions_against_the_simulated_server(
        sim: tuple[object, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    server, base = sim
    proxy = await make_proxy(base)
    model = server.config.model  # type: ignore[attr-defined]
    chat = {"model": model, "messages": [{"role": "user", "content": "one two three"}], "max_tokens": 6}
    async with client.post(proxy.url + CHAT, json=chat, headers={"Authorization": "Bearer sk-abc"}) as resp:
        answer = await resp.json()
    async with client.post(proxy.url + "/v1/completions", json={"model": model, "prompt": "a b", "max_tokens": 4,
                                                                "stream": True}) as resp:
        streamed = await resp.read()
    assert b'"choices": []' not in streamed and streamed.endswith(b"data: [DONE]\n\n")
    await settle()
    chat_record, completion_record = _records(proxy.sink)[-2:]
    assert chat_record.completion_tokens == answer["usage"]["completion_tokens"] == 6
    assert chat_record.output_chars == len(answer["choices"][0]["message"]["content"])
    assert chat_record.caller not in ("anonymous", "sk-abc") and len(chat_record.caller) == 16
    assert (completion_record.prompt_tokens, completion_record.completion_tokens) == (2, 4)
    assert completion_record.ttft_seconds is not None and completion_record.chunks == 4
    assert completion_record.gap_mean_seconds is not None and completion_record.gap_mean_seconds > 0


async def test_concurrent_streams_each_get_their_own_exact_record(
        sim: tuple[object, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    server, base = sim
    proxy = await make_proxy(base)
    model = server.config.model  # type: ignore[attr-defined]

    async def one(n: int) -> bytes:
        body = {"model": model, "messages": [{"role": "user", "content": "w " * n}], "max_tokens": n,
                "stream": True}
        async with client.post(proxy.url + CHAT, json=body) as resp:
            return await resp.read()

    sizes = list(range(1, 33))
    outputs = await asyncio.gather(*(one(n) for n in sizes))
    assert all(out.endswith(b"data: [DONE]\n\n") for out in outputs)
    await settle()
    records = _records(proxy.sink)
    assert len({r.request_id for r in records}) == len(sizes)
    assert sorted((r.prompt_tokens, r.completion_tokens) for r in records) == [(n, n) for n in sizes]
    assert proxy.value("campwatch_proxy_tokens_total", direction="completion") == sum(sizes)
    assert proxy.value("campwatch_proxy_requests_in_flight") == 0


async def test_refusals_and_json_validity_are_described_from_the_simulated_outputs(
        make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    refusing = SimulatedModelServer(SimServerConfig(itl_seconds=0.001, refusal_rate=1.0))
    compliant = SimulatedModelServer(SimServerConfig(itl_seconds=0.001, refusal_rate=0.0))
    runners = []
    try:
        for server in (refusing, compliant):
            runner, port = await start_server(server)
            runners.append(runner)
            proxy = await make_proxy(f"http://127.0.0.1:{port}")
            # max_tokens stays small: the simulator cuts its JSON answer at 4 characters per token
            body = {"model": server.config.model, "messages": [{"role": "user", "content": "q"}],
                    "max_tokens": 8, "stream": True, "response_format": {"type": "json_object"}}
            async with client.post(proxy.url + CHAT, json=body) as resp:
                await resp.read()
            await settle()
            record = _records(proxy.sink)[-1]
            assert record.json_requested
            if server is refusing:
                assert (record.refusal, record.json_valid) == (True, False)
            else:
                assert (record.refusal, record.json_valid) == (False, True)
    finally:
        for runner in runners:
            await runner.cleanup()


async def test_large_and_chunked_response_bodies_arrive_intact(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = stub
    proxy = await make_proxy(base)
    expected = bytes(range(256)) * 4 * 3000
    for query, has_length in (("kib=3000", True), ("kib=3000&chunked=1", False)):
        async with client.get(f"{proxy.url}/files/blob?{query}", headers={"X-Stub-Mode": "big"}) as resp:
            assert await resp.read() == expected
            assert ("Content-Length" in resp.headers) == has_length


async def test_head_requests_keep_the_upstreams_content_length(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = stub
    proxy = await make_proxy(base)
    async with client.head(f"{proxy.url}/files/blob?kib=2", headers={"X-Stub-Mode": "big"}) as resp:
        direct = await client.head(f"{base}/files/blob?kib=2", headers={"X-Stub-Mode": "big"})
        assert resp.status == 200
        assert resp.headers["Content-Length"] == direct.headers["Content-Length"] == str(2 * 1024)


async def test_compressed_responses_are_forwarded_compressed_and_decode_at_the_client(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = stub
    proxy = await make_proxy(base)
    async with client.get(proxy.url + "/v1/models", headers={"X-Stub-Mode": "gzip"}) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert await resp.json() == {"object": "list", "data": []}
