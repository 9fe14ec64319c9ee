"""Exported request-capture (proxy) metric families.

The proxy's counters and histograms (agent.capture.instruments) publish points of these families
only, through the snapshot; `host` is added there."""

from __future__ import annotations

from agent.metric_spec import MetricSpec

TTFT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)
"""vLLM's time_to_first_token_seconds bounds (trimmed at both ends), so the two compare bucket by bucket."""

LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0,
)
"""Short bounds too: embeddings and /v1/models answer in milliseconds."""

PROXY_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("campwatch_proxy_requests_total", "counter",
               "Requests forwarded by the proxy, by route, model and HTTP status returned to the client.",
               ("host", "route", "model", "status")),
    MetricSpec("campwatch_proxy_ttft_seconds", "histogram",
               "Time from the request reaching the proxy to the first output chunk (streaming only).",
               ("host", "model")),
    MetricSpec("campwatch_proxy_latency_seconds", "histogram",
               "Time from the request reaching the proxy to the last byte sent to the client.",
               ("host", "route", "model")),
    MetricSpec("campwatch_proxy_tokens_total", "counter",
               "Tokens reported by the upstream's usage, by direction (prompt, completion, cached_prompt, "
               "reasoning; cached_prompt is a part of prompt, reasoning a part of completion). The Responses "
               "API's input/output tokens count as prompt/completion.",
               ("host", "direction")),
    MetricSpec("campwatch_proxy_requests_in_flight", "gauge", "Requests the proxy is forwarding now.", ("host",)),
    MetricSpec("campwatch_proxy_errors_total", "counter",
               "Requests that did not complete normally, by reason (upstream_unavailable, upstream_timeout, "
               "upstream_broken, client_disconnected, body_too_large, bad_request_target: a CONNECT or "
               "absolute-form request refused, sse_event_too_large: a stream passed through unparsed).",
               ("host", "reason")),
    MetricSpec("campwatch_proxy_client_aborts_total", "counter",
               "Requests whose client went away before the answer ended, seen by the proxy, by model. vLLM "
               "does not count these in its own abort counter (vllm:request_success_total{finished_reason="
               "\"abort\"}, campwatch_engine_requests_aborted_total), so this is the client abort rate; a "
               "client that closes right after the end of the stream ([DONE]) is not counted.",
               ("host", "model")),
    MetricSpec("campwatch_proxy_record_errors_total", "counter",
               "Per-request records lost to a proxy-side failure (stage=build: computing the record; "
               "stage=sink: the store sink raised). Forwarding is not affected.",
               ("host", "stage")),
    MetricSpec("campwatch_proxy_outputs_captured_total", "counter",
               "Outputs kept (redacted) for drift investigation under capture.store_text.", ("host",)),
)
