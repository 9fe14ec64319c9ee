"""vLLM's own Prometheus metrics, declared as vLLM 0.x (V1 engine) declares them, for the simulated
model server. Built on prometheus_client like vLLM itself, so the page has vLLM's exact shape:
names with the `vllm:` prefix, `model_name` and `engine` labels, vLLM's bucket layouts.

`legacy=True` serves the pre-0.9 names for the renamed gauges and latency histograms, which is
what an older server in a fleet would show."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
               10.0, 20.0, 40.0, 80.0)
REQUEST_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                           50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)


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
    model: str
    prompt_tokens: int
    generation_tokens: int
    queue_seconds: float
    ttft_seconds: float
    e2e_seconds: float
    finish_reason: str = "stop"
    cached_prompt_tokens: int = 0


class VllmMetrics:
    """The metric state of one simulated vLLM server with one engine core."""

    def __init__(self, *, legacy: bool = False, engine: str = "0", max_model_len: int = 8192) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.legacy = legacy
        self.engine = engine
        self._lock = threading.Lock()
        lab = ["model_name", "engine"]
        reg = self.registry
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
        self.e2e = Histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
                             lab, buckets=REQUEST_LATENCY_BUCKETS, registry=reg)
        self.queue = Histogram("vllm:request_queue_time_seconds",
                               "Histogram of time spent in WAITING phase for request.", lab,
                               buckets=REQUEST_LATENCY_BUCKETS, registry=reg)
        # vLLM 0.32's per-GPU estimates (--enable-mfu-metrics), for an 8B-parameter BF16 model: 2 FLOPs
        # per parameter per token, the weights read once per decode step of a batch of _SIM_BATCH.
        self.flops = Counter("vllm:estimated_flops_per_gpu_total", "Estimated number of floating point "
                             "operations per GPU (for Model Flops Utilization calculations).", lab, registry=reg)
        self.read_bytes = Counter("vllm:estimated_read_bytes_per_gpu_total", "Estimated number of bytes read "
                                  "from memory per GPU (for Model Flops Utilization calculations).", lab,
                                  registry=reg)
        self.write_bytes = Counter("vllm:estimated_write_bytes_per_gpu_total", "Estimated number of bytes "
                                   "written to memory per GPU (for Model Flops Utilization calculations).", lab,
                                   registry=reg)
        tb = token_buckets(max_model_len)
        self.req_prompt = Histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", lab,
                                    buckets=tb, registry=reg)
        self.req_gen = Histogram("vllm:request_generation_tokens", "Number of generation tokens processed.", lab,
                                 buckets=tb, registry=reg)

    def _labels(self, model: str) -> tuple[str, str]:
        return (model, self.engine)

    def declare_model(self, model: str) -> None:
        """Create every series of the model at 0, as vLLM V1's logger does at start (so the first
        requests show up as an increase, not as a series appearing)."""
        lab = self._labels(model)
        for reason in ("stop", "length", "abort", "error"):
            self.success.labels(*lab, reason)
        for metric in (self.running, self.waiting, self.kv_usage, self.prefix_queries, self.prefix_hits,
                       self.preemptions, self.prompt_tokens, self.generation_tokens, self.cached_tokens,
                       self.ttft, self.itl, self.e2e, self.queue, self.req_prompt, self.req_gen,
                       self.flops, self.read_bytes, self.write_bytes):
            metric.labels(*lab)

    def set_load(self, model: str, *, running: int, waiting: int, kv_cache_usage: float) -> None:
        lab = self._labels(model)
        self.running.labels(*lab).set(running)
        self.waiting.labels(*lab).set(waiting)
        self.kv_usage.labels(*lab).set(kv_cache_usage)

    def record(self, done: FinishedRequest) -> None:
        lab = self._labels(done.model)
        with self._lock:
            self.prompt_tokens.labels(*lab).inc(done.prompt_tokens)
            self.generation_tokens.labels(*lab).inc(done.generation_tokens)
            self.prefix_queries.labels(*lab).inc(done.prompt_tokens)
            self.prefix_hits.labels(*lab).inc(done.cached_prompt_tokens)
            self.cached_tokens.labels(*lab).inc(done.cached_prompt_tokens)
            self.success.labels(*lab, done.finish_reason).inc()
            self.ttft.labels(*lab).observe(done.ttft_seconds)
            self.e2e.labels(*lab).observe(done.e2e_seconds)
            self.queue.labels(*lab).observe(done.queue_seconds)
            self.req_prompt.labels(*lab).observe(done.prompt_tokens)
            self.req_gen.labels(*lab).observe(done.generation_tokens)
            tokens = done.prompt_tokens - done.cached_prompt_tokens + done.generation_tokens
            self.flops.labels(*lab).inc(2 * _SIM_PARAMS * tokens)
            self.read_bytes.labels(*lab).inc(2 * _SIM_PARAMS * done.generation_tokens / _SIM_BATCH)
            self.write_bytes.labels(*lab).inc(_SIM_KV_BYTES_PER_TOKEN * tokens)
            if done.generation_tokens > 1:
                per_token = (done.e2e_seconds - done.ttft_seconds) / (done.generation_tokens - 1)
                self.itl.labels(*lab).observe(max(per_token, 0.0))

    def render(self) -> bytes:
        # vLLM disables prometheus_client's *_created series; so does this page.
        page = generate_latest(self.registry)
        return b"".join(line for line in page.splitlines(keepends=True) if b"_created" not in line)
