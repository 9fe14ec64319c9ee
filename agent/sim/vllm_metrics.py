"""vLLM's own Prometheus metrics, declared as vLLM (V1 engine) declares them: the one vLLM page
simulator, serving the simulated model server of `campwatch demo` and the tests and benchmarks.
Built on prometheus_client like vLLM itself, so the page has vLLM's exact shape: names with the
`vllm:` prefix, `model_name` and `engine` labels, vLLM's bucket layouts, finish reasons and the
per-engine series created at 0 when a model is declared.

`legacy=True` serves the pre-0.9 names for the renamed gauges and latency histograms (and leaves
out the families added since), which is what an older server in a fleet would show. `v032=True`
also serves vLLM 0.32's newer families, the API server's HTTP middleware families, the client
library's process/GC families and the `_created` companions, as a real 0.32 page does."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
               10.0, 20.0, 40.0, 80.0)
REQUEST_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                           50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
ITERATION_BUCKETS = tuple(float(2**i) for i in range(15))  # 1 .. 16384
FINISH_REASONS = ("stop", "length", "abort", "error", "repetition")
_LATENCIES = ("e2e_request_latency_seconds", "request_queue_time_seconds", "request_inference_time_seconds",
              "request_prefill_time_seconds", "request_decode_time_seconds")


def token_buckets(max_model_len: int) -> tuple[float, ...]:
    """vLLM's 1-2-5 series up to max_model_len."""
    out: list[float] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_model_len:
                return tuple(out)
            out.append(float(value))
        exponent += 1


_SIM_PARAMS = 8e9
_SIM_BATCH = 8
_SIM_KV_BYTES_PER_TOKEN = 131072.0  # 32 layers x 8 KV heads x 128 dims x 2 (K, V) x 2 bytes


@dataclass(frozen=True, slots=True)
class FinishedRequest:
    """One finished request as a V1 engine records it."""

    model: str
    prompt_tokens: int = 100
    generation_tokens: int = 50
    queue_seconds: float = 0.05
    ttft_seconds: float = 0.3
    e2e_seconds: float = 2.0
    finish_reason: str = "stop"
    cached_prompt_tokens: int = 0
    itl_seconds: float | None = None
    """The latency of each output token after the first; None: spread evenly over e2e - ttft."""

    def per_token_seconds(self) -> float | None:
        if self.itl_seconds is not None:
            return self.itl_seconds
        if self.generation_tokens > 1:
            return max((self.e2e_seconds - self.ttft_seconds) / (self.generation_tokens - 1), 0.0)
        return None


class VllmMetrics:
    """The metric state of one simulated vLLM server: `models` (more with `declare_model`) on the
    engine cores `engines`; `restart()` drops every counter back to zero, as a restarted server."""

    def __init__(self, models: Sequence[str] = (), engines: Sequence[str] = ("0",), *, legacy: bool = False,
                 max_model_len: int = 8192, lora_adapters: Sequence[str] = (), v032: bool = False) -> None:
        self.models: list[str] = []
        self.engines = tuple(engines)
        self.legacy = legacy
        self.v032 = v032
        self.max_model_len = max_model_len
        self.lora_adapters = tuple(lora_adapters)
        self._lock = threading.Lock()
        self.restart()
        for model in models:
            self.declare_model(model)

    def restart(self) -> None:
        """A fresh registry (every counter and histogram at zero) with the declared models again."""
        with self._lock:
            self._declare()
        for model in self.models:
            self._declare_series(model)

    def _declare(self) -> None:
        reg = self.registry = CollectorRegistry(auto_describe=True)
        lab = ["model_name", "engine"]
        legacy = self.legacy
        self.running = Gauge("vllm:num_requests_running", "Number of requests in model execution batches.",
                             lab, registry=reg)
        self.waiting = Gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
                             lab, registry=reg)
        kv_name = "vllm:gpu_cache_usage_perc" if legacy else "vllm:kv_cache_usage_perc"
        self.kv_usage = Gauge(kv_name, "KV-cache usage. 1 means 100 percent usage.", lab, registry=reg)
        prefix = "vllm:gpu_prefix_cache" if legacy else "vllm:prefix_cache"
        self.prefix_queries = Counter(f"{prefix}_queries",
                                      "Prefix cache queries, in terms of number of queried tokens.",
                                      lab, registry=reg)
        self.prefix_hits = Counter(f"{prefix}_hits", "Prefix cache hits, in terms of number of cached tokens.",
                                   lab, registry=reg)
        self.preemptions = Counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.",
                                   lab, registry=reg)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Number of prefill tokens processed.", lab, registry=reg)
        self.generation_tokens = Counter("vllm:generation_tokens", "Number of generation tokens processed.",
                                         lab, registry=reg)
        self.cached_tokens = Counter("vllm:prompt_tokens_cached", "Number of cached prompt tokens (local prefix "
                                     "cache hits).", lab, registry=reg)
        self.success = Counter("vllm:request_success", "Count of successfully processed requests.",
                               [*lab, "finished_reason"], registry=reg)
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                              lab, buckets=TTFT_BUCKETS, registry=reg)
        itl_name = "vllm:time_per_output_token_seconds" if legacy else "vllm:inter_token_latency_seconds"
        self.itl = Histogram(itl_name, "Histogram of inter-token latency in seconds.", lab,
                             buckets=ITL_BUCKETS, registry=reg)
        self.latency = {name: Histogram(f"vllm:{name}", f"Histogram of {name.replace('_', ' ')}.", lab,
                                        buckets=REQUEST_LATENCY_BUCKETS, registry=reg) for name in _LATENCIES}
        # vLLM's per-GPU estimates (--enable-mfu-metrics), for an 8B-parameter BF16 model: 2 FLOPs
        # per parameter per token, the weights read once per decode step of a batch of _SIM_BATCH.
        self.flops = Counter("vllm:estimated_flops_per_gpu_total", "Estimated number of floating point "
                             "operations per GPU (for Model Flops Utilization calculations).", lab, registry=reg)
        self.read_bytes = Counter("vllm:estimated_read_bytes_per_gpu_total", "Estimated number of bytes read "
                                  "from memory per GPU (for Model Flops Utilization calculations).", lab,
                                  registry=reg)
        self.write_bytes = Counter("vllm:estimated_write_bytes_per_gpu_total", "Estimated number of bytes "
                                   "written to memory per GPU (for Model Flops Utilization calculations).", lab,
                                   registry=reg)
        tokens = token_buckets(self.max_model_len)
        self.req_prompt = Histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", lab,
                                    buckets=tokens, registry=reg)
        self.req_gen = Histogram("vllm:request_generation_tokens", "Number of generation tokens processed.", lab,
                                 buckets=tokens, registry=reg)
        self.max_tokens = Histogram("vllm:request_params_max_tokens", "Histogram of the max_tokens request "
                                    "parameter.", lab, buckets=tokens, registry=reg)
        self.iteration = Histogram("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.",
                                   lab, buckets=ITERATION_BUCKETS, registry=reg)
        cache_config = Gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
                             ["block_size", "num_gpu_blocks"], registry=reg)
        cache_config.labels("16", "7281").set(1)
        lora = Gauge("vllm:lora_requests_info", "Running stats on lora requests.",
                     ["max_lora", "running_lora_adapters", "waiting_lora_adapters"], registry=reg)
        if self.lora_adapters:
            lora.labels("4", "", "").set(1.0)  # an older combination: must lose to the newer one
            lora.labels("4", ",".join(self.lora_adapters), self.lora_adapters[-1]).set(2.0)
        if not legacy:  # families added since the renames
            self.waiting_by_reason = Gauge("vllm:num_requests_waiting_by_reason", "Number of requests waiting, by "
                                           "reason.", [*lab, "reason"], registry=reg)
            self.sleep = Gauge("vllm:engine_sleep_state", "Engine sleep state.", [*lab, "sleep_state"],
                               registry=reg)
            self.by_source = Counter("vllm:prompt_tokens_by_source", "Number of prompt tokens by source.",
                                     [*lab, "source"], registry=reg)
            self.tpot = Histogram("vllm:request_time_per_output_token_seconds", "Histogram of time per output "
                                  "token in seconds, per request.", lab, buckets=ITL_BUCKETS, registry=reg)
        if self.v032:
            self._declare_v032(lab)

    def _declare_v032(self, lab: list[str]) -> None:
        from prometheus_client import GCCollector, PlatformCollector, ProcessCollector, Summary

        reg = self.registry
        GCCollector(registry=reg)
        PlatformCollector(registry=reg)
        ProcessCollector(registry=reg)
        self.cached_by_source = Counter("vllm:prompt_tokens_cached_by_source", "Cache hits by tier.",
                                        [*lab, "source"], registry=reg)
        self.admission = Counter("vllm:admission_rejections", "Admission rejections.", ["model_name", "reason"],
                                 registry=reg)
        self.preempted = Histogram("vllm:request_num_preemptions", "Preemptions per request.", lab,
                                   buckets=(1, 2, 3, 4, 5, 10, 20), registry=reg)
        self.http = Counter("http_requests_total", "Total number of requests by method, status and handler.",
                            ["handler", "method", "status"], registry=reg)
        self.http_duration = Histogram("http_request_duration_seconds", "Latency.", ["handler", "method"],
                                       registry=reg)
        self.http_size = Summary("http_request_size_bytes", "Request size.", ["handler"], registry=reg)

    def declare_model(self, model: str) -> None:
        """Create every series of the model at 0 on every engine core, as vLLM V1's logger does at
        start (so the first requests show up as an increase, not as a series appearing)."""
        if model not in self.models:
            self.models.append(model)
        self._declare_series(model)

    def _declare_series(self, model: str) -> None:
        for engine in self.engines:
            lab = (model, engine)
            for reason in FINISH_REASONS:
                self.success.labels(*lab, reason)
            for metric in (self.prefix_queries, self.prefix_hits, self.preemptions, self.prompt_tokens,
                           self.generation_tokens, self.cached_tokens, self.ttft, self.itl, *self.latency.values(),
                           self.req_prompt, self.req_gen, self.max_tokens, self.iteration, self.flops,
                           self.read_bytes, self.write_bytes):
                metric.labels(*lab)
            if not self.legacy:
                for waiting in ("capacity", "deferred"):
                    self.waiting_by_reason.labels(*lab, waiting).set(0)
                for state, value in (("awake", 1), ("weights_offloaded", 0), ("discard_all", 0)):
                    self.sleep.labels(*lab, state).set(value)
                for source in ("local_compute", "local_cache_hit", "external_kv_transfer"):
                    self.by_source.labels(*lab, source)
                self.tpot.labels(*lab)
            if self.v032:
                for source in ("device", "host", "disk", "p2p", "external_unspecified"):
                    self.cached_by_source.labels(*lab, source)
                self.preempted.labels(*lab)
            self.set_load(model, running=0, waiting=0, kv_cache_usage=0.0, engine=engine)
        if self.v032:
            for reason in ("max_num_queued_reqs", "max_num_queued_tokens"):
                self.admission.labels(model, reason)

    def set_load(self, model: str, *, running: float, waiting: float, kv_cache_usage: float,
                 engine: str | None = None) -> None:
        lab = (model, engine or self.engines[0])
        self.running.labels(*lab).set(running)
        self.waiting.labels(*lab).set(waiting)
        self.kv_usage.labels(*lab).set(kv_cache_usage)

    def record(self, done: FinishedRequest, *, engine: str | None = None, times: int = 1) -> None:
        """`times` requests like `done` finished on `engine` (default: the first engine core)."""
        lab = (done.model, engine or self.engines[0])
        per_token = done.per_token_seconds()
        computed = done.prompt_tokens - done.cached_prompt_tokens + done.generation_tokens
        with self._lock:
            for _ in range(times):
                self.prompt_tokens.labels(*lab).inc(done.prompt_tokens)
                self.generation_tokens.labels(*lab).inc(done.generation_tokens)
                self.prefix_queries.labels(*lab).inc(done.prompt_tokens)
                self.prefix_hits.labels(*lab).inc(done.cached_prompt_tokens)
                self.cached_tokens.labels(*lab).inc(done.cached_prompt_tokens)
                self.success.labels(*lab, done.finish_reason).inc()
                self.ttft.labels(*lab).observe(done.ttft_seconds)
                for name, seconds in (("e2e_request_latency_seconds", done.e2e_seconds),
                                      ("request_queue_time_seconds", done.queue_seconds),
                                      ("request_inference_time_seconds", done.e2e_seconds - done.queue_seconds),
                                      ("request_prefill_time_seconds", done.ttft_seconds - done.queue_seconds),
                                      ("request_decode_time_seconds", done.e2e_seconds - done.ttft_seconds)):
                    self.latency[name].labels(*lab).observe(seconds)
                self.req_prompt.labels(*lab).observe(done.prompt_tokens)
                self.req_gen.labels(*lab).observe(done.generation_tokens)
                self.max_tokens.labels(*lab).observe(done.generation_tokens * 2)
                self.iteration.labels(*lab).observe(done.prompt_tokens)
                self.flops.labels(*lab).inc(2 * _SIM_PARAMS * computed)
                self.read_bytes.labels(*lab).inc(2 * _SIM_PARAMS * done.generation_tokens / _SIM_BATCH)
                self.write_bytes.labels(*lab).inc(_SIM_KV_BYTES_PER_TOKEN * computed)
                if per_token is not None:
                    if not self.legacy:
                        self.tpot.labels(*lab).observe(per_token)
                    itl = self.itl.labels(*lab)
                    for _ in range(max(done.generation_tokens - 1, 0)):
                        itl.observe(per_token)
                if self.v032:
                    self.cached_by_source.labels(*lab, "device").inc(done.cached_prompt_tokens)
                    self.preempted.labels(*lab).observe(0)
                    status = "5xx" if done.finish_reason == "error" else "2xx"
                    self.http.labels("/v1/chat/completions", "POST", status).inc()
                    self.http_duration.labels("/v1/chat/completions", "POST").observe(done.e2e_seconds)
                    self.http_size.labels("/v1/chat/completions").observe(512)

    def render(self) -> str:
        page = generate_latest(self.registry).decode()
        if self.v032:
            return page  # vLLM 0.32 serves the _created companions
        # older vLLM releases disable prometheus_client's *_created series; so does this page
        return "".join(line for line in page.splitlines(keepends=True) if "_created" not in line)
