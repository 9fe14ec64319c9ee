"""campwatch against a real vLLM (the CPU build, serving a tiny random-weight Llama), driven with
the official openai SDK. Run by `make e2e` from its own venv (.venv-e2e); never part of `make test`.

The tests run in file order on one stack: first the exchanges (each request sent straight to vLLM
and through the proxy, greedy so both answer alike), then the records, then the engine figures
against vLLM's own page, then client aborts (last: they leave vLLM's counters moved). Captured
pages and exchanges go to <work>/fixtures; with E2E_SAVE_FIXTURES=1 also to
tests/fixtures/vllm/. Figures (requests, mismatches, wall time) go to <work>/summary.json."""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import shutil
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from build_model import build
from promtext import buckets, histogram_quantile, samples, value
from stack import MODEL_NAME, ROOT, WINDOW, Stack, running_stack

WORK = Path(os.environ.get("E2E_WORK", ROOT / "var" / "e2e"))
MODEL_DIR = Path(os.environ.get("E2E_MODEL", ROOT / ".e2e-cache" / "tiny-llama"))
CAMPWATCH = Path(os.environ.get("E2E_CAMPWATCH_BIN", ROOT / ".venv" / "bin" / "campwatch"))
SAVE_FIXTURES = os.environ.get("E2E_SAVE_FIXTURES") == "1"
FIXTURES = ROOT / "tests" / "fixtures" / "vllm"
CONCURRENT_REQUESTS = int(os.environ.get("E2E_CONCURRENT", "200"))
VOLATILE = frozenset({"id", "created", "created_at"})
"""Members that differ between two answers to the same request."""

PROMPTS = ("hello world how are you today", "tell me a story about a cat and a dog in the park",
           "the model server answers every request token by token", "gpu memory cache prefill decode")

SUMMARY: dict[str, Any] = {"requests_direct": 0, "requests_proxied": 0, "mismatches": [], "responses_api": None}
PROXIED: list[tuple[str, bool, int, int | None, int | None]] = []
"""(route, stream, status, prompt_tokens, completion_tokens) the records must hold, one per request."""
_LOCK = threading.Lock()


def _count(kind: str, n: int = 1) -> None:
    with _LOCK:
        SUMMARY[kind] += n


def _expect(route: str, stream: bool, status: int, prompt: int | None, completion: int | None) -> None:
    with _LOCK:
        PROXIED.append((route, stream, status, prompt, completion))


def _mismatch(what: str) -> None:
    with _LOCK:
        SUMMARY["mismatches"].append(what)


def _save(name: str, data: str | bytes) -> None:
    target = WORK / "fixtures" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        target.write_text(data)
    else:
        target.write_bytes(data)
    if SAVE_FIXTURES:
        FIXTURES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, FIXTURES / name)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    started = time.monotonic()
    build(MODEL_DIR)
    SUMMARY["model_build_s"] = round(time.monotonic() - started, 1)
    with running_stack(WORK, MODEL_DIR, CAMPWATCH) as running:
        SUMMARY["stack_start_s"] = round(time.monotonic() - started, 1)
        _save("vllm-0.32-idle.txt", running.baseline_page)
        try:
            yield running
        except BaseException:
            print(running.logs())
            raise
        finally:
            SUMMARY["suite_s"] = round(time.monotonic() - started, 1)
            (WORK / "summary.json").write_text(json.dumps(SUMMARY, indent=2))


def _clients(s: Stack) -> tuple[openai.OpenAI, openai.OpenAI]:
    direct = openai.OpenAI(base_url=s.vllm_url + "/v1", api_key="sk-e2e", max_retries=0, timeout=300)
    proxied = openai.OpenAI(base_url=s.proxy_url + "/v1", api_key="sk-e2e", max_retries=0, timeout=300)
    return direct, proxied


def _plain(obj: Any) -> Any:
    """An SDK object as the JSON the server sent (members it did not send left out), ids aside."""
    data = obj.to_dict() if hasattr(obj, "to_dict") else obj
    return _strip(data)


def _strip(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _strip(v) for k, v in data.items() if k not in VOLATILE}
    if isinstance(data, list):
        return [_strip(v) for v in data]
    return data


def _call(client: openai.OpenAI, route: str, prompt: str, *, stream: bool, usage: bool, max_tokens: int) -> Any:
    common: dict[str, Any] = {"model": MODEL_NAME, "max_tokens": max_tokens, "temperature": 0, "seed": 7}
    if stream:
        common["stream"] = True
        if usage:
            common["stream_options"] = {"include_usage": True}
    if route == "chat":
        result = client.chat.completions.create(messages=[{"role": "user", "content": prompt}], **common)
    else:
        result = client.completions.create(prompt=prompt, **common)
    return [_plain(chunk) for chunk in result] if stream else _plain(result)


def _usage_of(answer: Any) -> dict[str, Any] | None:
    """The token counts of an answer (streamed usage leaves out the null *_details members)."""
    if isinstance(answer, list):
        found = [chunk["usage"] for chunk in answer if chunk.get("usage")]
        usage = found[-1] if found else None
    else:
        usage = answer.get("usage")
    return {k: v for k, v in usage.items() if v is not None} if usage else None


def test_raw_exchanges_are_captured_for_the_fast_tests(stack: Stack) -> None:
    chat = {"model": MODEL_NAME, "messages": [{"role": "user", "content": PROMPTS[0]}], "max_tokens": 12,
            "temperature": 0, "seed": 7, "stream": True}
    for name, body in {
        "chat-stream": chat,
        "chat-stream-usage": {**chat, "stream_options": {"include_usage": True}},
        "completions-stream-usage": {"model": MODEL_NAME, "prompt": PROMPTS[1], "max_tokens": 12, "temperature": 0,
                                     "seed": 7, "stream": True, "stream_options": {"include_usage": True}},
        "chat": {**chat, "stream": False},
    }.items():
        status, raw = _raw("POST", stack.vllm_url + ("/v1/completions" if name.startswith("completions")
                                                     else "/v1/chat/completions"), body)
        _count("requests_direct")
        assert status == 200
        _save(f"vllm-0.32-{name}.{'json' if name == 'chat' else 'sse'}", raw)
        _save(f"vllm-0.32-{name}.request.json", json.dumps(body))


SHAPES = [(route, stream, usage, max_tokens)
          for route in ("chat", "completions") for max_tokens in (1, 200)
          for stream, usage in ((False, False), (True, False), (True, True))]
"""The non-streamed shape comes first for each (route, max_tokens): its usage is the reference."""


def _prompts(max_tokens: int) -> tuple[str, ...]:
    return PROMPTS if max_tokens < 50 else PROMPTS[:1]  # 200 tokens take a while on a shared CPU


def test_every_shape_answers_through_the_proxy_as_it_does_directly(stack: Stack) -> None:
    direct, proxied = _clients(stack)
    reference: dict[tuple[str, str, int], dict[str, Any]] = {}
    for route, stream, usage, max_tokens in SHAPES:
        for prompt in _prompts(max_tokens):
            want = _call(direct, route, prompt, stream=stream, usage=usage, max_tokens=max_tokens)
            got = _call(proxied, route, prompt, stream=stream, usage=usage, max_tokens=max_tokens)
            _count("requests_direct")
            _count("requests_proxied")
            shape = f"{route} stream={stream} include_usage={usage} max_tokens={max_tokens}"
            if _view(got) != _view(want):
                _mismatch(f"{shape}: proxied answer differs from direct: {_diff(_view(got), _view(want))}")
            if stream and len([c for c in got if c.get("usage")]) != (1 if usage else 0):
                _mismatch(f"{shape}: a usage chunk must show exactly when asked")
            if not stream:
                tokens = _usage_of(want)
                assert tokens is not None
                reference[(route, prompt, max_tokens)] = tokens
            tokens = reference[(route, prompt, max_tokens)]
            if (usage or not stream) and _usage_of(got) != tokens:
                _mismatch(f"{shape}: usage {_usage_of(got)} != the non-streamed answer's {tokens}")
            _expect(f"/v1/{'chat/completions' if route == 'chat' else 'completions'}", stream, 200,
                    tokens["prompt_tokens"], tokens["completion_tokens"])
    assert not SUMMARY["mismatches"], "\n".join(SUMMARY["mismatches"])


def _view(answer: Any) -> Any:
    """A streamed answer as what must match: vLLM merges the outputs of several steps into one chunk
    when its consumer lags, so chunk boundaries differ between two runs of the same request. Kept:
    the first chunk, the text of each choice, every chunk-level member and its value, the finish
    chunk(s) and the usage chunk, whole."""
    if not isinstance(answer, list):
        return answer
    text: dict[int, str] = {}
    members: set[str] = set()
    ends = []
    for chunk in answer:
        members.update(json.dumps([k, v], sort_keys=True) for k, v in chunk.items() if k != "choices")
        for choice in chunk.get("choices", []):
            piece = (choice.get("delta") or {}).get("content") if "delta" in choice else choice.get("text")
            text[choice["index"]] = text.get(choice["index"], "") + (piece or "")
            if choice.get("finish_reason"):
                ends.append(_without_text(chunk))
        if not chunk.get("choices"):
            ends.append(chunk)
    return {"first": answer[0], "text": text, "members": sorted(members), "ends": ends}


def _without_text(chunk: dict[str, Any]) -> dict[str, Any]:
    """A chunk less its text, which a merge may have grown (the text is compared whole)."""
    choices = []
    for choice in chunk["choices"]:
        choice = {k: v for k, v in choice.items() if k != "text"}
        if isinstance(choice.get("delta"), dict):
            choice["delta"] = {k: v for k, v in choice["delta"].items() if k != "content"}
        choices.append(choice)
    return {**chunk, "choices": choices}


def _diff(got: Any, want: Any) -> str:
    """The first place two answers differ, for the failure message."""
    if isinstance(got, dict) and isinstance(want, dict):
        keys = [k for k in {*got, *want} if got.get(k) != want.get(k)]
        return "; ".join(f"{k}: {got.get(k)} vs direct {want.get(k)}" for k in keys)
    return f"{got} vs direct {want}"


def test_concurrent_sync_sdk_streams_are_complete_and_counted(stack: Stack) -> None:
    """The sync SDK closes the connection right after `data: [DONE]`: these must not count as
    client disconnects (campwatch once recorded 3-7 of 116 so)."""
    _, proxied = _clients(stack)

    def one(i: int) -> tuple[str, bool, int, int, int]:
        route = "chat" if i % 2 == 0 else "completions"
        prompt = PROMPTS[i % len(PROMPTS)]
        max_tokens = (1, 4, 8, 16)[i % 4]
        answer = _call(proxied, route, prompt, stream=True, usage=True, max_tokens=max_tokens)
        tokens = _usage_of(answer)
        assert tokens is not None
        return (f"/v1/{'chat/completions' if route == 'chat' else 'completions'}", True, 200,
                tokens["prompt_tokens"], tokens["completion_tokens"])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(CONCURRENT_REQUESTS)))
    _count("requests_proxied", len(results))
    for row in results:
        _expect(*row)


def _raw(method: str, url: str, body: dict[str, Any]) -> tuple[int, bytes]:
    with httpx.stream(method, url, json=body, timeout=300) as resp:
        return resp.status_code, resp.read()


def test_unknown_model_and_over_long_prompt_get_vllms_own_errors_once(stack: Stack) -> None:
    before = samples(httpx.get(stack.vllm_url + "/metrics").text)
    cases = {
        "unknown-model": ({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}, 404),
        "too-long": ({"model": MODEL_NAME, "messages": [{"role": "user", "content": "hello " * 1500}],
                      "max_tokens": 10}, 400),
    }
    proxied_400 = 0
    for name, (body, status) in cases.items():
        for stream in (False, True):
            request = {**body, "stream": stream}
            direct_status, direct_body = _raw("POST", stack.vllm_url + "/v1/chat/completions", request)
            proxy_status, proxy_body = _raw("POST", stack.proxy_url + "/v1/chat/completions", request)
            _count("requests_direct")
            _count("requests_proxied")
            assert direct_status == proxy_status == status, name
            assert json.loads(proxy_body) == json.loads(direct_body), name
            _expect("/v1/chat/completions", stream, status, None, None)
            proxied_400 += status == 400
            if stream:
                _save(f"vllm-0.32-error-{name}-stream.json", direct_body)
    with pytest.raises(openai.NotFoundError):
        _clients(stack)[1].chat.completions.create(model="no-such-model", messages=[{"role": "user",
                                                                                      "content": "hi"}])
    _count("requests_proxied")
    _expect("/v1/chat/completions", False, 404, None, None)
    after = samples(httpx.get(stack.vllm_url + "/metrics").text)
    handler = {"handler": "/v1/chat/completions", "status": "4xx"}
    sent = (value(after, "http_requests_total", **handler) or 0) - (value(before, "http_requests_total", **handler)
                                                                       or 0)
    SUMMARY["http_4xx_seen_by_vllm"] = sent
    # direct: 4, proxied: 4 + 1 (SDK): each reaches vLLM exactly once (no retry without stream_options)
    assert sent == 9


def test_responses_api_through_the_proxy(stack: Stack) -> None:
    direct, proxied = _clients(stack)
    probe = httpx.post(stack.vllm_url + "/v1/responses", json={"model": MODEL_NAME, "input": "hello",
                                                               "max_output_tokens": 4}, timeout=300)
    _count("requests_direct")
    SUMMARY["responses_api"] = {"status": probe.status_code, "body": probe.text[:300]}
    if probe.status_code != 200:
        pytest.skip(f"this vLLM does not serve /v1/responses: {probe.status_code} {probe.text[:200]}")
    for prompt in PROMPTS[:2]:
        args: dict[str, Any] = {"model": MODEL_NAME, "input": prompt, "max_output_tokens": 16, "temperature": 0}
        want = _plain(direct.responses.create(**args))
        got = _plain(proxied.responses.create(**args))
        _count("requests_direct")
        _count("requests_proxied")
        assert _comparable_response(got) == _comparable_response(want)
        _expect("/v1/responses", False, 200, want["usage"]["input_tokens"], want["usage"]["output_tokens"])
        events = [_plain(e) for e in proxied.responses.create(stream=True, **args)]
        direct_events = [_plain(e) for e in direct.responses.create(stream=True, **args)]
        _count("requests_direct")
        _count("requests_proxied")
        assert _events_view(events) == _events_view(direct_events)
        done = [e for e in events if e["type"] == "response.completed"][-1]
        _expect("/v1/responses", True, 200, done["response"]["usage"]["input_tokens"],
                done["response"]["usage"]["output_tokens"])
    status, raw = _raw("POST", stack.vllm_url + "/v1/responses", {**args, "stream": True})
    _count("requests_direct")
    assert status == 200
    _save("vllm-0.32-responses-stream.sse", raw)
    status, raw = _raw("POST", stack.vllm_url + "/v1/responses", args)
    _count("requests_direct")
    assert status == 200
    _save("vllm-0.32-responses.json", raw)


def _events_view(events: list[dict[str, Any]]) -> dict[str, Any]:
    """A Responses stream as what must match: vLLM merges deltas as it merges chat chunks, so runs of
    one delta type count once, the text is compared whole, and the final response less its ids."""
    kinds: list[str] = []
    for event in events:
        if not (kinds and kinds[-1] == event["type"] and event["type"].endswith(".delta")):
            kinds.append(event["type"])
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    ends = [_comparable_response(e["response"]) for e in events if e["type"] == "response.completed"]
    return {"kinds": kinds, "text": text, "ends": ends}


def _comparable_response(data: dict[str, Any]) -> dict[str, Any]:
    """A Responses body without what differs between two answers (item ids are random)."""
    plain: dict[str, Any] = json.loads(json.dumps(data).replace(data.get("id", "\0"), ""))
    stripped: dict[str, Any] = _strip(plain | {"output": [
        {k: v for k, v in item.items() if k != "id"} for item in data.get("output", [])]})
    return stripped


def _records(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM request_records WHERE route != '/health'")]


def test_one_record_per_proxied_request_with_the_exact_tokens(stack: Stack) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_records(stack.db_path)) < len(PROXIED):
        time.sleep(0.5)
    time.sleep(1.5)  # a record beyond the expected count would show up now
    rows = _records(stack.db_path)
    got = Counter((r["route"], bool(r["stream"]), r["status"], r["prompt_tokens"], r["completion_tokens"])
                  for r in rows)
    want = Counter(PROXIED)
    missing, extra = want - got, got - want
    if missing or extra:
        _mismatch(f"records: missing {dict(missing)}, unexpected {dict(extra)}")
    assert not missing and not extra
    errors = Counter(r["error"] for r in rows if r["error"])
    SUMMARY["record_errors"] = dict(errors)
    assert not errors, errors
    # TTFT is the first chunk that shows output; a lone token that decodes to no text yet (half a
    # UTF-8 character: the random model makes those) shows none
    streamed = [r for r in rows if r["stream"] and r["status"] == 200]
    assert all((r["ttft_seconds"] is not None and r["ttft_seconds"] > 0) == (r["chunks"] > 0) for r in streamed)
    assert sum(r["chunks"] > 0 for r in streamed) > 0.9 * len(streamed)
    SUMMARY["records"] = len(rows)


ENGINE_COUNTERS = {  # campwatch family -> vLLM family
    "campwatch_engine_prompt_tokens_total": "vllm:prompt_tokens_total",
    "campwatch_engine_generation_tokens_total": "vllm:generation_tokens_total",
    "campwatch_engine_preemptions_total": "vllm:num_preemptions_total",
    "campwatch_engine_prefix_cache_queries_total": "vllm:prefix_cache_queries_total",
    "campwatch_engine_prefix_cache_hits_total": "vllm:prefix_cache_hits_total",
}
ENGINE_HISTOGRAMS = {
    "campwatch_engine_ttft_seconds": "vllm:time_to_first_token_seconds",
    "campwatch_engine_inter_token_latency_seconds": "vllm:inter_token_latency_seconds",
    "campwatch_engine_e2e_latency_seconds": "vllm:e2e_request_latency_seconds",
    "campwatch_engine_queue_time_seconds": "vllm:request_queue_time_seconds",
}


def test_engine_series_and_quantiles_equal_vllms_own_page(stack: Stack) -> None:
    time.sleep(4)  # quiet: campwatch's latest scrape now shows what vLLM shows
    page = httpx.get(stack.vllm_url + "/metrics").text
    mine = samples(httpx.get(stack.metrics_url).text)
    theirs, base = samples(page), samples(stack.baseline_page)
    _save("vllm-0.32-after-load.txt", page)
    assert value(mine, "campwatch_engine_up") == 1
    compared = 0
    for ours, upstream in ENGINE_COUNTERS.items():
        want = value(theirs, upstream)
        if want is None:
            continue
        assert value(mine, ours) == want, ours
        compared += 1
    for ours, upstream in ENGINE_HISTOGRAMS.items():
        start, end = buckets(base, upstream), buckets(theirs, upstream)
        window = {le: end[le] - start.get(le, 0.0) for le in end}
        for q in ("0.5", "0.9", "0.99"):
            want = histogram_quantile(float(q), window)
            got = value(mine, ours, window=WINDOW, quantile=q)
            if want is None or math.isinf(want):
                assert got is None, (ours, q)
                continue
            assert got is not None and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (ours, q, got, want)
            compared += 1
    SUMMARY["engine_values_compared"] = compared
    assert compared >= 12
    # no request has been aborted yet: the abort test below starts from zero
    assert value(theirs, "vllm:request_success_total", finished_reason="abort") in (None, 0.0)


def test_client_aborts_are_counted_by_the_proxy_not_by_vllm(stack: Stack) -> None:
    _, proxied = _clients(stack)
    before = samples(httpx.get(stack.vllm_url + "/metrics").text)
    aborts = 4
    for i in range(aborts):
        stream = proxied.chat.completions.create(
            model=MODEL_NAME, messages=[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], max_tokens=200,
            temperature=0, stream=True)
        for n, _ in enumerate(stream):
            if n == 2:
                break
        stream.close()
        _count("requests_proxied")
    time.sleep(4)
    page = httpx.get(stack.vllm_url + "/metrics").text
    after = samples(page)
    _save("vllm-0.32-after-aborts.txt", page)
    mine = samples(httpx.get(stack.metrics_url).text)
    assert value(mine, "campwatch_proxy_client_aborts_total", model=MODEL_NAME) == aborts
    vllm_aborts = [(value(p, "vllm:request_success_total", finished_reason="abort") or 0.0) for p in (before, after)]
    SUMMARY["vllm_abort_counter_increase"] = vllm_aborts[1] - vllm_aborts[0]
    assert vllm_aborts[1] == vllm_aborts[0], "vLLM now counts client aborts: update the abort-rate docs"
    rows = _records(stack.db_path)
    assert sum(r["error"] == "client_disconnected" for r in rows) == aborts
