"""Pages for tests and the benchmark.

`V1Server` is a current vLLM (V1 engine) metric state built from the families vLLM 0.33 registers in
vllm/v1/metrics/loggers.py, with prometheus_client as vLLM itself builds it: every family, `model_name` and
`engine` labels, vLLM's bucket layouts, finish reasons pre-created per engine.

`GrowingPage` replays a captured or constructed page with counters and histograms that grow by a
known amount per step (and can restart from zero), so SLIs over it can be checked by hand."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from agent.sim.vllm_metrics import ITL_BUCKETS, REQUEST_LATENCY_BUCKETS, TTFT_BUCKETS, token_buckets

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ITERATION_BUCKETS = tuple(float(2**i) for i in range(15))  # 1 .. 16384
FINISH_REASONS = ("stop", "length", "abort", "error", "repetition")


def fixture_text(relative: str) -> str:
    return (FIXTURES / relative).read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Req:
    """One finished request as a V1 engine would record it."""

    prompt_tokens: int = 100
    generation_tokens: int = 50
    queue_s: float = 0.05
    ttft_s: float = 0.3
    e2e_s: float = 2.0
    itl_s: float = 0.03
    reason: str = "stop"
    cached_tokens: int = 0


class V1Server:
    """vLLM V1 metrics for `models` x `engines`; `restart()` drops every counter back to zero."""

    def __init__(self, models: Sequence[str] = ("meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct"),
                 engines: Sequence[str] = ("0", "1"), max_model_len: int = 8192,
                 lora_adapters: Sequence[str] = (), v032: bool = False) -> None:
        self.models = tuple(models)
        self.v032 = v032
        """Also serve vLLM 0.32's newer families, the API server's HTTP middleware families, the
        client library's process/GC families and the `_created` companions, as a real 0.32 page does."""
        self.engines = tuple(engines)
        self.max_model_len = max_model_len
        self.lora_adapters = tuple(lora_adapters)
        self.restart()

    def restart(self) -> None:
        reg = self.registry = CollectorRegistry(auto_describe=True)
        lab = ["model_name", "engine"]
        self.running = Gauge("vllm:num_requests_running", "Requests in model execution batches.", lab, registry=reg)
        self.waiting = Gauge("vllm:num_requests_waiting", "Requests waiting to be processed.", lab, registry=reg)
        self.waiting_by_reason = Gauge("vllm:num_requests_waiting_by_reason", "Waiting requests by reason.",
                                       [*lab, "reason"], registry=reg)
        self.kv = Gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", lab, registry=reg)
        self.sleep = Gauge("vllm:engine_sleep_state", "Engine sleep state.", [*lab, "sleep_state"], registry=reg)
        self.prefix_queries = Counter("vllm:prefix_cache_queries", "Prefix cache queries (tokens).", lab,
                                      registry=reg)
        self.prefix_hits = Counter("vllm:prefix_cache_hits", "Prefix cache hits (tokens).", lab, registry=reg)
        self.preemptions = Counter("vllm:num_preemptions", "Cumulative preemptions.", lab, registry=reg)
        self.prompt = Counter("vllm:prompt_tokens", "Prefill tokens processed.", lab, registry=reg)
        self.generation = Counter("vllm:generation_tokens", "Generation tokens processed.", lab, registry=reg)
        self.cached = Counter("vllm:prompt_tokens_cached", "Cached prompt tokens.", lab, registry=reg)
        self.by_source = Counter("vllm:prompt_tokens_by_source", "Prompt tokens by source.", [*lab, "source"],
                                 registry=reg)
        self.success = Counter("vllm:request_success", "Finished requests.", [*lab, "finished_reason"],
                               registry=reg)
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "TTFT.", lab, buckets=TTFT_BUCKETS, registry=reg)
        self.itl = Histogram("vllm:inter_token_latency_seconds", "ITL.", lab, buckets=ITL_BUCKETS, registry=reg)
        self.tpot = Histogram("vllm:request_time_per_output_token_seconds", "TPOT per request.", lab,
                              buckets=ITL_BUCKETS, registry=reg)
        latency = {name: Histogram(f"vllm:{name}", f"{name}.", lab, buckets=REQUEST_LATENCY_BUCKETS, registry=reg)
                   for name in ("e2e_request_latency_seconds", "request_queue_time_seconds",
                                "request_inference_time_seconds", "request_prefill_time_seconds",
                                "request_decode_time_seconds")}
        self.latency = latency
        tokens = token_buckets(self.max_model_len)
        self.req_prompt = Histogram("vllm:request_prompt_tokens", "Prompt tokens per request.", lab,
                                    buckets=tokens, registry=reg)
        self.req_gen = Histogram("vllm:request_generation_tokens", "Generation tokens per request.", lab,
                                 buckets=tokens, registry=reg)
        self.max_tokens = Histogram("vllm:request_params_max_tokens", "max_tokens parameter.", lab,
                                    buckets=tokens, registry=reg)
        self.iteration = Histogram("vllm:iteration_tokens_total", "Tokens per engine step.", lab,
                                   buckets=ITERATION_BUCKETS, registry=reg)
        self.cache_config = Gauge("vllm:cache_config_info", "Cache config.", ["block_size", "num_gpu_blocks"],
                                  registry=reg)
        self.cache_config.labels("16", "7281").set(1)
        self.lora = Gauge("vllm:lora_requests_info", "Running LoRA adapters.",
                          ["max_lora", "running_lora_adapters", "waiting_lora_adapters"], registry=reg)
        if self.lora_adapters:
            self.lora.labels("4", "", "").set(1.0)  # an older combination: must lose to the newer one
            self.lora.labels("4", ",".join(self.lora_adapters), self.lora_adapters[-1]).set(2.0)
        if self.v032:
            self._declare_v032(lab)
        for model in self.models:
            for engine in self.engines:
                for reason in FINISH_REASONS:
                    self.success.labels(model, engine, reason)
                for reason in ("capacity", "deferred"):
                    self.waiting_by_reason.labels(model, engine, reason).set(0)
                for state, value in (("awake", 1), ("weights_offloaded", 0), ("discard_all", 0)):
                    self.sleep.labels(model, engine, state).set(value)
                for source in ("local_compute", "local_cache_hit", "external_kv_transfer"):
                    self.by_source.labels(model, engine, source)
                for counter in (self.prefix_queries, self.prefix_hits, self.preemptions, self.prompt,
                                self.generation, self.cached):
                    counter.labels(model, engine)
                for hist in (self.ttft, self.itl, self.tpot, self.req_prompt, self.req_gen, self.max_tokens,
                             self.iteration, *latency.values()):
                    hist.labels(model, engine)
                self.set_load(model, engine, running=0, waiting=0, kv=0.0)

    def _declare_v032(self, lab: list[str]) -> None:
        from prometheus_client import GCCollector, PlatformCollector, ProcessCollector, Summary

        reg = self.registry
        GCCollector(registry=reg)
        PlatformCollector(registry=reg)
        ProcessCollector(registry=reg)
        self.flops = Counter("vllm:estimated_flops_per_gpu_total", "Estimated FLOPs per GPU.", lab, registry=reg)
        self.read_bytes = Counter("vllm:estimated_read_bytes_per_gpu_total", "Bytes read per GPU.", lab,
                                  registry=reg)
        self.write_bytes = Counter("vllm:estimated_write_bytes_per_gpu_total", "Bytes written per GPU.", lab,
                                   registry=reg)
        self.cached_by_source = Counter("vllm:prompt_tokens_cached_by_source", "Cache hits by tier.",
                                        [*lab, "source"], registry=reg)
        self.admission = Counter("vllm:admission_rejections", "Admission rejections.", ["model_name", "reason"],
                                 registry=reg)
        self.preempted = Histogram("vllm:request_num_preemptions", "Preemptions per request.", lab,
                                   buckets=(1, 2, 3, 4, 5, 10, 20), registry=reg)
        http = ["handler", "method", "status"]
        self.http = Counter("http_requests_total", "Total number of requests by method, status and handler.",
                            http, registry=reg)
        self.http_duration = Histogram("http_request_duration_seconds", "Latency.", ["handler", "method"],
                                       registry=reg)
        self.http_size = Summary("http_request_size_bytes", "Request size.", ["handler"], registry=reg)
        for model in self.models:
            for reason in ("max_num_queued_reqs", "max_num_queued_tokens"):
                self.admission.labels(model, reason)
            for engine in self.engines:
                for source in ("device", "host", "disk", "p2p", "external_unspecified"):
                    self.cached_by_source.labels(model, engine, source)
                for metric in (self.flops, self.read_bytes, self.write_bytes, self.preempted):
                    metric.labels(model, engine)

    def set_load(self, model: str, engine: str, *, running: float, waiting: float, kv: float) -> None:
        self.running.labels(model, engine).set(running)
        self.waiting.labels(model, engine).set(waiting)
        self.kv.labels(model, engine).set(kv)

    def finish(self, model: str, engine: str, req: Req, times: int = 1) -> None:
        lab = (model, engine)
        for _ in range(times):
            self.prompt.labels(*lab).inc(req.prompt_tokens)
            self.generation.labels(*lab).inc(req.generation_tokens)
            self.cached.labels(*lab).inc(req.cached_tokens)
            self.prefix_queries.labels(*lab).inc(req.prompt_tokens)
            self.prefix_hits.labels(*lab).inc(req.cached_tokens)
            self.success.labels(*lab, req.reason).inc()
            self.ttft.labels(*lab).observe(req.ttft_s)
            self.latency["e2e_request_latency_seconds"].labels(*lab).observe(req.e2e_s)
            self.latency["request_queue_time_seconds"].labels(*lab).observe(req.queue_s)
            self.latency["request_inference_time_seconds"].labels(*lab).observe(req.e2e_s - req.queue_s)
            self.latency["request_prefill_time_seconds"].labels(*lab).observe(req.ttft_s - req.queue_s)
            self.latency["request_decode_time_seconds"].labels(*lab).observe(req.e2e_s - req.ttft_s)
            self.req_prompt.labels(*lab).observe(req.prompt_tokens)
            self.req_gen.labels(*lab).observe(req.generation_tokens)
            self.max_tokens.labels(*lab).observe(req.generation_tokens * 2)
            self.iteration.labels(*lab).observe(req.prompt_tokens)
            self.tpot.labels(*lab).observe(req.itl_s)
            for _ in range(max(req.generation_tokens - 1, 0)):
                self.itl.labels(*lab).observe(req.itl_s)
            if self.v032:
                self.flops.labels(*lab).inc(2 * 8e9 * (req.prompt_tokens + req.generation_tokens))
                self.read_bytes.labels(*lab).inc(16e9 * req.generation_tokens / 8)
                self.write_bytes.labels(*lab).inc(131072.0 * (req.prompt_tokens + req.generation_tokens))
                self.cached_by_source.labels(*lab, "device").inc(req.cached_tokens)
                self.preempted.labels(*lab).observe(0)
                self.http.labels("/v1/chat/completions", "POST", "5xx" if req.reason == "error" else "2xx").inc()
                self.http_duration.labels("/v1/chat/completions", "POST").observe(req.e2e_s)
                self.http_size.labels("/v1/chat/completions").observe(512)

    def render(self) -> str:
        page = generate_latest(self.registry).decode()
        if self.v032:
            return page  # vLLM 0.32 serves the _created companions
        return "".join(line for line in page.splitlines(keepends=True) if "_created" not in line)


_LE = re.compile(r'le="([^"]+)"')


class GrowingPage:
    """A page whose counters grow by `counter_step` (or `counter_steps[family]`) and whose
    histograms gain `observations` observations of `observed_value` (per family name, else the
    bound of the histogram's middle finite bucket) at every step. After `restart()` every counter
    and histogram starts again from zero, then keeps growing; gauges keep their captured values.

    This is test scaffolding that rewrites sample values line by line; the product's parser is
    prometheus_client's."""

    def __init__(self, text: str, *, counter_step: float = 10.0, observations: int = 2,
                 observed_value: Mapping[str, float] | None = None,
                 counter_steps: Mapping[str, float] | None = None) -> None:
        self.lines = text.splitlines()
        self.counter_step = counter_step
        self.counter_steps = dict(counter_steps or {})
        self.observations = observations
        self.observed_value = dict(observed_value or {})
        self.step = 0
        self.restarted = False
        self.types: dict[str, str] = {}
        self._bounds: dict[str, list[float]] = {}
        family = ""
        for line in self.lines:
            if line.startswith("# TYPE "):
                _, _, family, kind = line.split(" ", 3)
                self.types[family] = kind
            elif line and not line.startswith("#") and self.types.get(family) == "histogram":
                match = _LE.search(line)
                if match and line.startswith(family + "_bucket"):
                    self._bounds.setdefault(family, []).append(float(match.group(1)))

    def value_of(self, family: str) -> float:
        """The value each histogram observation has."""
        if family in self.observed_value:
            return self.observed_value[family]
        finite = sorted({b for b in self._bounds.get(family, []) if not math.isinf(b)})
        return finite[len(finite) // 2] if finite else 1.0

    def advance(self, steps: int = 1) -> None:
        self.step += steps

    def restart(self) -> None:
        self.restarted = True
        self.step = 0

    def render(self) -> str:
        out: list[str] = []
        family = ""
        base = 0.0 if self.restarted else 1.0
        n = self.step * self.observations
        for line in self.lines:
            if line.startswith("# TYPE "):
                family = line.split(" ", 3)[2]
            if not line or line.startswith("#"):
                out.append(line)
                continue
            head, raw = line.rsplit(" ", 1)
            value = float(raw)
            kind = self.types.get(family, "untyped")
            name = head.split("{", 1)[0]
            if kind == "counter":
                value = value * base + self.step * self.counter_steps.get(family, self.counter_step)
            elif kind == "histogram":
                observed = self.value_of(family)
                if name == family + "_bucket":
                    match = _LE.search(head)
                    bound = float(match.group(1)) if match else math.inf
                    value = value * base + (n if observed <= bound else 0)
                elif name == family + "_count":
                    value = value * base + n
                elif name == family + "_sum":
                    value = value * base + n * observed
            out.append(f"{head} {value!r}")
        return "\n".join(out) + "\n"
