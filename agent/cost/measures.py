"""What one host measured in one hour, kept apart from what it cost (pure).

An hour's measures (GPU-seconds held / observed / busy, energy, tokens from each source) and its
request groups (proxied requests counted by half-hour slot, model, route, caller, team and
input-size bucket) are all that pricing needs, so they are stored (cost_hours,
cost_request_groups) and priced at report time with the settings in force then
(agent.cost.pricing). A price change therefore never needs a stored row rewritten.

Input-size buckets: a request's input size picks its API price tier (a tier applies when the input
exceeds its threshold), so bucket edges are the tier thresholds genai-prices knows plus powers of
two. A threshold that is an edge prices exactly; one inside a bucket is priced by the bucket's mean
request (agent.cost.baselines.price_groups says so)."""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Literal

from agent.cost.histograms import PROMPT, parse_histograms
from agent.cost.measure import GpuHour
from agent.cost.tokens import EngineHour, RequestTokens, cached_of, proxy_hour
from agent.samples import HistogramSnapshot
from agent.utc import as_utc

TokenSource = Literal["proxy", "engine", "none"]
PROXY_BYPASS_TOLERANCE = 1.05
"""Proxy records are the token source unless the engine counted more than 5 % more tokens in the
same hour (clients bypassing the proxy): then the engine counters are."""

SLOT = timedelta(minutes=30)
"""Request groups are kept per half hour: time-of-day API prices change on the half hour
(genai-prices: deepseek off-peak 16:30-00:30 UTC)."""

INPUT_EDGES: tuple[int, ...] = (
    256, 512, 1024, 2048, 4096, 8192, 16384, 32000, 32768, 65536, 100000, 128000, 131072, 199999,
    200000, 256000, 262144, 272000, 512000, 524288, 1000000, 1048576, 2000000,
)
"""Upper bounds (inclusive) of the input-size buckets: powers of two and every tier threshold in
genai-prices' bundled data (tests/cost/test_cost_measures.py checks that list)."""
OPEN_END = 10**15
"""input_max of the last bucket."""


def bucket_of(input_tokens: int) -> tuple[int, int]:
    """The (input_min, input_max) bucket of a request's input size, both inclusive."""
    i = bisect.bisect_left(INPUT_EDGES, input_tokens)
    low = 0 if i == 0 else INPUT_EDGES[i - 1] + 1
    high = INPUT_EDGES[i] if i < len(INPUT_EDGES) else OPEN_END
    return low, high


def slot_of(ts: datetime) -> datetime:
    ts = as_utc(ts)
    return ts.replace(minute=0 if ts.minute < 30 else 30, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class RequestGroup:
    """Successful proxied requests with usage sharing slot, host, who and input-size bucket."""

    slot: datetime
    host: str
    model: str
    route: str
    caller: str
    team: str
    input_min: int
    input_max: int
    requests: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int

    @property
    def hour(self) -> datetime:
        return self.slot.replace(minute=0)

    @property
    def key(self) -> tuple[datetime, str, str, str, str, str, int]:
        return (self.slot, self.host, self.model, self.route, self.caller, self.team, self.input_min)


def group_requests(host: str, records: Iterable[RequestTokens]) -> list[RequestGroup]:
    """Priceable requests summed per group (failed or usage-less ones are counted in the hour)."""
    sums: dict[tuple[datetime, str, str, str, str, int, int], list[int]] = {}
    for r in records:
        if not r.priceable:
            continue
        prompt = r.prompt_tokens or 0
        low, high = bucket_of(prompt)
        key = (slot_of(r.ts), r.model, r.route, r.caller, r.team, low, high)
        acc = sums.setdefault(key, [0, 0, 0, 0])
        acc[0] += 1
        acc[1] += prompt
        acc[2] += r.completion_tokens or 0
        acc[3] += cached_of(r)
    return [RequestGroup(slot, host, model, route, caller, team, low, high, *acc)
            for (slot, model, route, caller, team, low, high), acc in sorted(sums.items())]


@dataclass(frozen=True, slots=True)
class HourMeasure(GpuHour):
    """One cost_hours row (column names match agent/store/schema.py): the GPU figures of the hour
    (`simulated`: any GPU or engine reading was simulated) and its tokens from each source."""

    host: str
    engine_gap_seconds: float
    engine_prompt_tokens: int
    engine_generation_tokens: int
    engine_cached_tokens: int
    engine_requests: int
    engine_prompt_histogram: HistogramSnapshot | None
    proxy_prompt_tokens: int
    proxy_generation_tokens: int
    proxy_cached_tokens: int
    proxy_requests: int
    proxy_unpriced_requests: int
    token_source: TokenSource
    request_groups: bool
    """Whether the hour's request groups are stored (False for hours migrated from cost_ledger)."""
    measured_at: datetime

    @property
    def prompt_tokens(self) -> int:
        return self._by_source(self.proxy_prompt_tokens, self.engine_prompt_tokens)

    @property
    def generation_tokens(self) -> int:
        return self._by_source(self.proxy_generation_tokens, self.engine_generation_tokens)

    @property
    def cached_tokens(self) -> int:
        return self._by_source(self.proxy_cached_tokens, min(self.engine_cached_tokens, self.engine_prompt_tokens))

    @property
    def requests(self) -> int:
        return self._by_source(self.proxy_requests, self.engine_requests)

    @property
    def unattributed_tokens(self) -> int:
        """Tokens the engine served that no proxy record accounts for (clients calling it directly)."""
        if self.token_source != "engine":
            return 0
        return max(self.engine_prompt_tokens + self.engine_generation_tokens
                   - self.proxy_prompt_tokens - self.proxy_generation_tokens, 0)

    def _by_source(self, proxy: int, engine: int) -> int:
        return proxy if self.token_source == "proxy" else engine if self.token_source == "engine" else 0

    def values(self) -> dict[str, object]:
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["engine_prompt_histogram"] = histogram_json(self.engine_prompt_histogram)
        return out

    def measured(self) -> dict[str, object]:
        """Everything but measured_at: two measurements of the same data compare equal here."""
        out = self.values()
        out.pop("measured_at")
        return out

    def coverage(self) -> tuple[float, int]:
        """What the hour covers, for the rule that a purge never replaces a fuller hour."""
        return (self.held_seconds, self.prompt_tokens + self.generation_tokens)


def histogram_json(h: HistogramSnapshot | None) -> str | None:
    if h is None:
        return None
    return json.dumps({PROMPT: {"buckets": [["+Inf" if le == float("inf") else le, c] for le, c in h.buckets],
                                "sum": h.sum, "count": h.count}})


def histogram_from_json(text: str | None) -> HistogramSnapshot | None:
    return parse_histograms(text).get(PROMPT)


def choose_source(proxy_tokens: int | None, engine: EngineHour | None) -> TokenSource:
    engine_tokens = engine.prompt_tokens + engine.generation_tokens if engine is not None else 0
    if proxy_tokens is not None and proxy_tokens > 0:
        if engine is not None and engine_tokens > proxy_tokens * PROXY_BYPASS_TOLERANCE:
            return "engine"
        return "proxy"
    if engine is not None:
        return "engine"
    return "proxy" if proxy_tokens is not None else "none"


def measure_hour(
    host: str,
    hour: datetime,
    gpu: GpuHour | None,
    engine: EngineHour | None,
    records: Sequence[RequestTokens],
    engine_configured: bool,
    measured_at: datetime,
) -> HourMeasure | None:
    """One hour's measures (None when nothing was measured)."""
    if gpu is None and engine is None and not records:
        return None
    gpu = gpu or GpuHour(hour, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)
    proxy = proxy_hour(hour, records) if records else None
    source = choose_source(proxy.prompt_tokens + proxy.generation_tokens if proxy else None, engine)
    engine_observed = engine.observed_seconds if engine is not None else 0.0
    engine_gap = max(gpu.held_seconds - engine_observed, 0.0) if engine_configured else 0.0
    return HourMeasure(
        hour=hour, host=host, gpus=gpu.gpus, held_seconds=gpu.held_seconds,
        allocated_gpu_seconds=gpu.allocated_gpu_seconds, observed_gpu_seconds=gpu.observed_gpu_seconds,
        gpu_gap_seconds=gpu.gpu_gap_seconds, busy_gpu_seconds=gpu.busy_gpu_seconds,
        engine_gap_seconds=engine_gap, energy_joules=gpu.energy_joules,
        engine_prompt_tokens=engine.prompt_tokens if engine else 0,
        engine_generation_tokens=engine.generation_tokens if engine else 0,
        engine_cached_tokens=engine.cached_tokens if engine else 0,
        engine_requests=engine.requests if engine else 0,
        engine_prompt_histogram=engine.prompt_histogram if engine else None,
        proxy_prompt_tokens=proxy.prompt_tokens if proxy else 0,
        proxy_generation_tokens=proxy.generation_tokens if proxy else 0,
        proxy_cached_tokens=proxy.cached_tokens if proxy else 0,
        proxy_requests=proxy.requests if proxy else 0,
        proxy_unpriced_requests=proxy.unpriced_requests if proxy else 0,
        token_source=source, request_groups=True,
        simulated=gpu.simulated or bool(engine and engine.simulated),
        measured_at=as_utc(measured_at),
    )
