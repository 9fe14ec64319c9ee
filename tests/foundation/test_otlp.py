from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from agent.capture.catalog import PROXY_METRICS, TTFT_BUCKETS
from agent.capture.proxy import ProxyServer
from agent.catalog import ALL_METRICS, CATALOG
from agent.config import CaptureSettings, ProxySettings
from agent.exporters.otel_names import SEMCONV, otel_name
from agent.exporters.otlp import OtlpExport
from agent.exporters.prometheus import build_registry
from agent.exporters.snapshot import Snapshot
from agent.metric_spec import MetricSpec
from agent.samples import Point, labels
from agent.sim.model_server import DEFAULT_MODEL, SimServerConfig, SimulatedModelServer, start_server
from agent.store.sink import MemorySink
from tests.support.net import serve

CHAT = "/v1/chat/completions"


class FailingSink(MemorySink):
    """Refuses records once `fail` is set, so the proxy counts a record error."""

    fail = False

    def offer(self, rows: Sequence[Any], *, drop_reason: str = "queue_full") -> int:
        if self.fail:
            raise RuntimeError("sink refused")
        return super().offer(rows, drop_reason=drop_reason)


class Receiver:
    """A local OTLP/HTTP metrics receiver keeping every decoded request."""

    def __init__(self) -> None:
        self.received: list[ExportMetricsServiceRequest] = []
        self.url = ""

    async def handler(self, request: web.Request) -> web.Response:
        message = ExportMetricsServiceRequest()
        message.ParseFromString(await request.read())
        self.received.append(message)
        return web.Response(status=200)

    def metrics(self) -> dict[str, Metric]:
        return {m.name: m for rm in self.received[-1:] for sm in rm.resource_metrics[0].scope_metrics
                for m in sm.metrics}

    def resource(self) -> dict[str, str]:
        return {a.key: a.value.string_value for a in self.received[-1].resource_metrics[0].resource.attributes}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()
    app = web.Application()
    app.router.add_post("/v1/metrics", got.handler)
    async with serve(app) as base:
        got.url = base + "/v1/metrics"
        yield got


def _attrs(point: Any) -> dict[str, str]:
    return {a.key: a.value.string_value for a in point.attributes}


def _number_points(metric: Metric) -> Sequence[Any]:
    kind = metric.WhichOneof("data")
    assert kind in ("gauge", "sum"), (metric.name, kind)
    return list(metric.gauge.data_points if kind == "gauge" else metric.sum.data_points)


async def _export(snapshot: Snapshot, receiver: Receiver, environ: dict[str, str] | None = None) -> None:
    export = OtlpExport(snapshot, "node-1", endpoint=receiver.url, interval_s=3600, environ=environ or {},
                        specs=ALL_METRICS)
    assert await asyncio.to_thread(export.flush)
    await asyncio.to_thread(export.shutdown)


async def test_snapshot_values_reach_an_otlp_http_receiver_under_semantic_convention_names(
        receiver: Receiver) -> None:
    snapshot = Snapshot("node-1")
    snapshot.replace("gpu", [Point("campwatch_gpu_power_watts", 312.5, labels(gpu=0, uuid="GPU-a")),
                             Point("campwatch_gpu_energy_joules_total", 9000.0, labels(gpu=0, uuid="GPU-a"))])
    await _export(snapshot, receiver, {"POD_NAME": "vllm-0", "POD_NAMESPACE": "serving"})

    attrs = receiver.resource()
    assert (attrs["service.name"], attrs["host.name"], attrs["k8s.pod.name"], attrs["k8s.namespace.name"]) == (
        "campwatch", "node-1", "vllm-0", "serving")
    assert attrs["service.version"]
    metrics = receiver.metrics()
    power = metrics["hw.power"]
    assert power.unit == "W"
    point = power.gauge.data_points[0]
    assert point.as_double == 312.5
    assert _attrs(point) == {"gpu": "0", "hw.id": "GPU-a", "hw.type": "gpu", "host": "node-1"}
    energy = metrics["hw.energy"]
    assert energy.unit == "J"
    assert energy.sum.is_monotonic and energy.sum.data_points[0].as_double == 9000.0


def test_every_catalog_family_has_one_otel_name_and_shared_names_are_told_apart_by_attributes() -> None:
    by_name: dict[str, list[MetricSpec]] = {}
    for spec in ALL_METRICS:
        by_name.setdefault(otel_name(spec).name, []).append(spec)
    assert set(SEMCONV) <= {spec.name for spec in ALL_METRICS}  # no entry for a family that does not exist
    for name, specs in by_name.items():
        assert not name.startswith("campwatch_"), name
        if len(specs) > 1:  # one instrument, several families: same kind, distinct constant attributes
            assert len({s.kind for s in specs}) == 1, name
            assert len({otel_name(s).attributes for s in specs}) == len(specs), name
    assert otel_name(next(s for s in ALL_METRICS if s.name == "campwatch_engine_prompt_tokens_total")).unit \
        == "{token}"
    assert otel_name(next(s for s in ALL_METRICS if s.name == "campwatch_engine_kv_cache_usage_ratio")) \
        .name == "campwatch.engine.kv_cache_usage"


def _synthetic(spec: MetricSpec, value: float) -> Point:
    return Point(spec.name, value, labels(**{name: f"{name}-x" for name in spec.labels if name != "host"}))


async def test_every_catalog_family_arrives_over_otlp_with_proxy_traffic_and_histograms(
        receiver: Receiver) -> None:
    model_server = SimulatedModelServer(SimServerConfig(itl_seconds=0.001, refusal_rate=0.0,
                                                        prefill_tokens_per_s=1e6))
    upstream, port = await start_server(model_server)
    sink = FailingSink()
    proxy = ProxyServer(ProxySettings(listen="127.0.0.1:0", upstream=f"http://127.0.0.1:{port}",
                                      max_body_bytes=4096),
                        CaptureSettings(caller_salt=SecretStr("t")), "node-1", sink)
    snapshot = Snapshot("node-1")
    snapshot.attach("proxy", proxy.points)
    proxy_port = await proxy.start()
    try:
        async with aiohttp.ClientSession() as client:
            for stream in (False, True, True):
                body = {"model": DEFAULT_MODEL, "stream": stream, "max_tokens": 8,
                        "messages": [{"role": "user", "content": "hello"}]}
                async with client.post(f"http://127.0.0.1:{proxy_port}{CHAT}", json=body) as resp:
                    assert resp.status == 200
                    await resp.read()
            sink.fail = True  # one request over the body limit whose record the sink then refuses
            async with client.post(f"http://127.0.0.1:{proxy_port}{CHAT}", data=b"x" * 5000) as resp:
                assert resp.status == 413
        for _ in range(5):
            await asyncio.sleep(0.01)
        # a client abort needs a client leaving mid-stream (tests/capture counts those): here that
        # family arrives as a synthetic point like the other areas' families
        proxy_names = {spec.name for spec in PROXY_METRICS} - {"campwatch_proxy_client_aborts_total"}
        values = {spec.name: 1000.0 + i for i, spec in enumerate(ALL_METRICS)}
        snapshot.replace("others", [_synthetic(spec, values[spec.name]) for spec in ALL_METRICS
                                    if spec.name not in proxy_names])
        scrape = {f.name: f for f in text_string_to_metric_families(generate_latest(build_registry(snapshot, CATALOG))
                                                                      .decode())}
        await _export(snapshot, receiver)
    finally:
        await proxy.stop()
        await upstream.cleanup()

    # /metrics: the 3 requests, names and labels as before, host added
    requests = [s for s in scrape["campwatch_proxy_requests"].samples if s.name.endswith("_total")]
    assert [(s.labels, s.value) for s in requests if s.labels["status"] == "200"] == [
        ({"host": "node-1", "route": CHAT, "model": DEFAULT_MODEL, "status": "200"}, 3.0)]

    metrics = receiver.metrics()
    for spec in ALL_METRICS:
        target = otel_name(spec)
        assert target.name in metrics, f"{spec.name} did not arrive as {target.name}"
        metric = metrics[target.name]
        assert metric.unit == target.unit, spec.name
        constant = dict(target.attributes)
        if spec.kind == "histogram":
            assert metric.WhichOneof("data") == "histogram", spec.name
            points = [p for p in metric.histogram.data_points if constant.items() <= _attrs(p).items()]
            assert points and all(p.count > 0 and sum(p.bucket_counts) == p.count for p in points), spec.name
            continue
        points = [p for p in _number_points(metric) if constant.items() <= _attrs(p).items()]
        assert points, spec.name
        if spec.name not in proxy_names:
            assert [p.as_double for p in points] == [values[spec.name]], spec.name
            assert _attrs(points[0])["host"] == "node-1", spec.name

    requests_otlp = metrics["campwatch.proxy.requests"]
    assert requests_otlp.sum.is_monotonic
    assert sorted((sorted(_attrs(p).items()), p.as_double) for p in requests_otlp.sum.data_points) == [
        (sorted({"host": "node-1", "route": CHAT, "model": "", "status": "413"}.items()), 1.0),
        (sorted({"host": "node-1", "route": CHAT, "model": DEFAULT_MODEL, "status": "200"}.items()), 3.0)]
    errors = {_attrs(p)["reason"]: p.as_double for p in metrics["campwatch.proxy.errors"].sum.data_points}
    assert errors == {"body_too_large": 1.0}
    record_errors = metrics["campwatch.proxy.record_errors"].sum.data_points
    assert [(_attrs(p)["stage"], p.as_double) for p in record_errors] == [("sink", 1.0)]
    ttft = metrics["gen_ai.server.time_to_first_token"]
    assert ttft.unit == "s"
    (ttft_point,) = ttft.histogram.data_points
    assert list(ttft_point.explicit_bounds) == list(TTFT_BUCKETS)
    assert len(ttft_point.bucket_counts) == len(TTFT_BUCKETS) + 1
    assert ttft_point.count == 2  # the two streamed requests
    assert _attrs(ttft_point) == {"host": "node-1", "gen_ai.request.model": DEFAULT_MODEL}
    duration = metrics["gen_ai.server.request.duration"]
    served = next(p for p in duration.histogram.data_points
                  if _attrs(p)["gen_ai.request.model"] == DEFAULT_MODEL)
    assert served.count == 3 and _attrs(served)["http.route"] == CHAT
    # the same histogram on /metrics
    latency = {s.name: s.value for s in scrape["campwatch_proxy_latency_seconds"].samples
               if "le" not in s.labels and s.labels["model"] == DEFAULT_MODEL}
    assert latency["campwatch_proxy_latency_seconds_count"] == 3.0
    assert latency["campwatch_proxy_latency_seconds_sum"] == served.sum


def test_the_otlp_name_table_in_the_docs_is_current() -> None:
    from pathlib import Path

    from agent.publish import otlp_doc

    doc = Path(__file__).resolve().parents[2] / "docs" / "otlp.md"
    assert doc.read_text() == otlp_doc(), "run: python -m agent.publish docs/otlp.md"
