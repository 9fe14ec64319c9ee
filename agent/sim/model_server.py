"""A simulated OpenAI-compatible model server that behaves like vLLM from the outside.

It serves /v1/chat/completions and /v1/completions (JSON and SSE streaming, with the final usage
chunk when `stream_options.include_usage` is set, then `data: [DONE]`), /v1/models, /health and a
vLLM-format /metrics page. A bounded batch (max_num_seqs) makes requests queue under load; prefill
and decode take time in proportion to token counts, so latency, throughput and the busy fraction
reported to the simulated GPU all follow the traffic. Everything it serves is labelled simulated.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from agent.sim.vllm_metrics import FinishedRequest, VllmMetrics

DEFAULT_MODEL = "simulated/llama-3.1-8b-instruct"

_WORDS = tuple(
    "the model serves tokens quickly and the cluster keeps costs low while latency stays within "
    "budget for every request that arrives from users across regions during peak hours of traffic "
    "with batching caching scheduling memory throughput energy power report plan review quarter".split()
)
_DRIFTED_WORDS = tuple(
    "unfortunately policy restrictions prevent disclosure regarding confidential internal matters; please "
    "consult documentation support escalation compliance legal review pending approval".split()
)
"""After the drift point the simulated model talks like a different model: other words, more refusals."""
_REFUSAL = "I'm sorry, but I can't help with that request."


@dataclass(frozen=True, slots=True)
class SimServerConfig:
    model: str = DEFAULT_MODEL
    max_num_seqs: int = 256
    """vLLM's default batch limit."""
    prefill_tokens_per_s: float = 40_000.0
    itl_seconds: float = 0.02
    """Inter-token latency at an empty batch; grows with the batch."""
    tokens_per_chunk: int = 1
    kv_cache_tokens: int = 400_000
    refusal_rate: float = 0.02
    drift_after_s: float | None = None
    """After this many seconds, outputs shift (longer, more refusals): for drift demos."""
    seed: int = 0
    legacy_metrics: bool = False


def _count_prompt_tokens(body: dict[str, Any]) -> int:
    """Words stand in for tokens (the demo builds prompts of N words for N tokens)."""
    if "messages" in body:
        total = 0
        for message in body.get("messages") or []:
            content = message.get("content", "") if isinstance(message, dict) else ""
            if isinstance(content, list):
                content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            total += len(str(content).split())
        return max(total, 1)
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        prompt = " ".join(str(p) for p in prompt)
    return max(len(str(prompt).split()), 1)


def _error(status: int, message: str, kind: str = "BadRequestError") -> web.Response:
    return web.json_response({"object": "error", "message": message, "type": kind, "code": status},
                             status=status)


class SimulatedModelServer:
    """aiohttp application plus the scheduling state; `load()` feeds the simulated GPU."""

    def __init__(self, config: SimServerConfig | None = None) -> None:
        self.config = config or SimServerConfig()
        self.metrics = VllmMetrics(legacy=self.config.legacy_metrics)
        self.metrics.declare_model(self.config.model)
        self._slots = asyncio.Semaphore(self.config.max_num_seqs)
        self._running = 0
        self._waiting = 0
        self._tokens_in_flight = 0
        self._rng = random.Random(self.config.seed)
        self._started = time.monotonic()
        self.requests_served = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.add_routes([
            web.post("/v1/chat/completions", self._chat),
            web.post("/v1/completions", self._completions),
            web.get("/v1/models", self._models),
            web.get("/metrics", self._metrics),
            web.get("/health", self._health),
        ])

    def load(self) -> float:
        """Busy fraction 0..1 of the simulated GPU: idle at 0 requests, saturating with the batch."""
        if self._running == 0:
            return 0.0
        return min(1.0, 0.35 + 0.65 * self._running / (self.config.max_num_seqs / 2))

    def _update_gauges(self) -> None:
        self.metrics.set_load(
            self.config.model,
            running=self._running,
            waiting=self._waiting,
            kv_cache_usage=min(1.0, self._tokens_in_flight / self.config.kv_cache_tokens),
        )

    async def _models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{
            "id": self.config.model, "object": "model", "created": int(time.time()),
            "owned_by": "campwatch-simulated", "max_model_len": 8192,
        }]})

    async def _metrics(self, _request: web.Request) -> web.Response:
        self._update_gauges()
        return web.Response(body=self.metrics.render().encode(),
                            content_type="text/plain", charset="utf-8",
                            headers={"X-Campwatch-Simulated": "1"})

    async def _health(self, _request: web.Request) -> web.Response:
        return web.Response(text="")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=True)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=False)

    def _drifted(self) -> bool:
        after = self.config.drift_after_s
        return after is not None and time.monotonic() - self._started >= after

    def _output_words(self, n_tokens: int, body: dict[str, Any]) -> tuple[list[str], str]:
        drifted = self._drifted()
        refusal_rate = self.config.refusal_rate * (8 if drifted else 1)
        if self._rng.random() < refusal_rate:
            words = _REFUSAL.split()
            return [w + " " for w in words], "stop"
        wants_json = (body.get("response_format") or {}).get("type") in {"json_object", "json_schema"}
        if wants_json:
            words = [self._rng.choice(_WORDS) for _ in range(max(n_tokens - 4, 1))]
            text = json.dumps({"answer": " ".join(words)})
            size = -(-len(text) // max(n_tokens, 1))  # ceil: n_tokens pieces at most, never truncated
            return [text[i:i + size] for i in range(0, len(text), size)], "stop"
        vocab = _DRIFTED_WORDS if drifted else _WORDS
        words = [self._rng.choice(vocab) + " " for _ in range(n_tokens)]
        return words, "length"

    async def _serve(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object")
        model = body.get("model", self.config.model)
        if model != self.config.model:
            return _error(404, f"The model `{model}` does not exist.", "NotFoundError")
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 16
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return _error(400, "max_tokens must be a positive integer")
        prompt_tokens = _count_prompt_tokens(body)
        stream = bool(body.get("stream"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        arrived = time.monotonic()
        self._waiting += 1
        async with self._slots:
            self._waiting -= 1
            self._running += 1
            self._tokens_in_flight += prompt_tokens + max_tokens
            try:
                return await self._generate(request, body, chat=chat, stream=stream, include_usage=include_usage,
                                            prompt_tokens=prompt_tokens, max_tokens=max_tokens, arrived=arrived)
            finally:
                self._running -= 1
                self._tokens_in_flight -= prompt_tokens + max_tokens

    async def _generate(self, request: web.Request, body: dict[str, Any], *, chat: bool, stream: bool,
                        include_usage: bool, prompt_tokens: int, max_tokens: int,
                        arrived: float) -> web.StreamResponse:
        cfg = self.config
        started = time.monotonic()
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        created = int(time.time())
        pieces, finish = self._output_words(max_tokens, body)
        await asyncio.sleep(prompt_tokens / cfg.prefill_tokens_per_s)
        first_token_at = time.monotonic()
        itl = cfg.itl_seconds * (1.0 + self._running / cfg.max_num_seqs)
        obj = "chat.completion.chunk" if chat else "text_completion"

        def chunk(text: str | None, finish_reason: str | None) -> dict[str, Any]:
            choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": finish_reason}
            if chat:
                choice["delta"] = {"content": text} if text is not None else {}
            else:
                choice["text"] = text or ""
            return {"id": rid, "object": obj, "created": created, "model": cfg.model, "choices": [choice]}

        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                 "total_tokens": prompt_tokens + len(pieces), "prompt_tokens_details": None}
        if stream:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                                   "Cache-Control": "no-cache"})
            await response.prepare(request)
            try:
                if chat:
                    first = chunk(None, None)
                    first["choices"][0]["delta"] = {"role": "assistant", "content": ""}
                    await response.write(b"data: " + json.dumps(first).encode() + b"\n\n")
                step = max(cfg.tokens_per_chunk, 1)
                for i in range(0, len(pieces), step):
                    if i:
                        await asyncio.sleep(itl * step)
                    last = i + step >= len(pieces)
                    payload = chunk("".join(pieces[i:i + step]), finish if last else None)
                    await response.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                if include_usage:
                    tail = {"id": rid, "object": obj, "created": created, "model": cfg.model,
                            "choices": [], "usage": usage}
                    await response.write(b"data: " + json.dumps(tail).encode() + b"\n\n")
                await response.write(b"data: [DONE]\n\n")
                await response.write_eof()
            except (ConnectionResetError, asyncio.CancelledError):
                self._finish(prompt_tokens, 0, started - arrived, first_token_at - arrived, "abort", arrived)
                raise
            self._finish(prompt_tokens, len(pieces), started - arrived, first_token_at - arrived, finish, arrived)
            return response
        await asyncio.sleep(itl * max(len(pieces) - 1, 0))
        text = "".join(pieces)
        choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": finish}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        self._finish(prompt_tokens, len(pieces), started - arrived, first_token_at - arrived, finish, arrived)
        return web.json_response({"id": rid, "object": "chat.completion" if chat else "text_completion",
                                  "created": created, "model": cfg.model, "choices": [choice], "usage": usage})

    def _finish(self, prompt_tokens: int, generated: int, queue_s: float, ttft_s: float, reason: str,
                arrived: float) -> None:
        self.requests_served += 1
        self.prompt_tokens += prompt_tokens
        self.generation_tokens += generated
        self.metrics.record(FinishedRequest(
            model=self.config.model, prompt_tokens=prompt_tokens, generation_tokens=generated,
            queue_seconds=queue_s, ttft_seconds=ttft_s, e2e_seconds=time.monotonic() - arrived,
            finish_reason=reason,
        ))


async def start_server(server: SimulatedModelServer, host: str = "127.0.0.1",
                       port: int = 0) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (call `cleanup()` to stop) and the bound port."""
    runner = web.AppRunner(server.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, int(runner.addresses[0][1])
