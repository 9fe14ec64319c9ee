"""Replays the trace's arrival pattern and request sizes against an OpenAI-compatible endpoint."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import aiohttp

from agent.sim.trace import TraceRequest


@dataclass
class TrafficStats:
    sent: int = 0
    completed: int = 0
    failed: int = 0
    in_flight: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrafficPlan:
    base_url: str
    model: str
    duration_s: float
    speed: float = 1.0
    """Arrival-rate multiplier: 2.0 replays the trace twice as fast."""
    max_prompt_tokens: int = 4000
    max_generated_tokens: int = 1000
    stream_share: float = 0.8
    json_share: float = 0.05
    max_in_flight: int = 256
    api_keys: tuple[str, ...] = ("sk-demo-team-a", "sk-demo-team-b", "sk-demo-batch")
    seed: int = 0


def _body(request: TraceRequest, plan: TrafficPlan, rng: random.Random) -> dict[str, object]:
    words = min(request.context_tokens, plan.max_prompt_tokens)
    prompt = " ".join("token" for _ in range(words))
    body: dict[str, object] = {
        "model": plan.model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": min(request.generated_tokens, plan.max_generated_tokens),
        "stream": rng.random() < plan.stream_share,
    }
    if rng.random() < plan.json_share:
        body["response_format"] = {"type": "json_object"}
    return body


async def _one(session: aiohttp.ClientSession, plan: TrafficPlan, body: dict[str, object], key: str,
               stats: TrafficStats) -> None:
    stats.in_flight += 1
    try:
        async with session.post(f"{plan.base_url}/v1/chat/completions", json=body,
                                headers={"Authorization": f"Bearer {key}"}) as response:
            if response.status != 200:
                stats.failed += 1
                stats.errors[str(response.status)] = stats.errors.get(str(response.status), 0) + 1
                await response.read()
                return
            if body["stream"]:
                usage = None
                async for line in response.content:
                    if line.startswith(b"data: {") and b'"usage"' in line:
                        usage = json.loads(line[6:]).get("usage") or usage
            else:
                usage = (await response.json()).get("usage")
            stats.completed += 1
            if usage:
                stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                stats.completion_tokens += int(usage.get("completion_tokens") or 0)
    except (TimeoutError, aiohttp.ClientError) as exc:
        stats.failed += 1
        name = type(exc).__name__
        stats.errors[name] = stats.errors.get(name, 0) + 1
    finally:
        stats.in_flight -= 1


async def replay(trace: Iterable[TraceRequest], plan: TrafficPlan, stats: TrafficStats,
                 stop: asyncio.Event | None = None) -> TrafficStats:
    """Send the trace's requests at their (scaled) arrival times until duration_s; then wait for
    the requests in flight. A streamed request without usage in its stream counts no tokens."""
    rng = random.Random(plan.seed)
    stop = stop or asyncio.Event()
    started = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=plan.max_in_flight)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for request in trace:
            due = started + request.offset_s / plan.speed
            if request.offset_s / plan.speed >= plan.duration_s:
                break
            delay = due - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                    break
                except TimeoutError:
                    pass
            if stop.is_set():
                break
            if stats.in_flight >= plan.max_in_flight:
                stats.failed += 1
                stats.errors["client_saturated"] = stats.errors.get("client_saturated", 0) + 1
                continue
            stats.sent += 1
            body = _body(request, plan, rng)
            task = asyncio.create_task(_one(session, plan, body, rng.choice(plan.api_keys), stats))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=60)
    return stats
