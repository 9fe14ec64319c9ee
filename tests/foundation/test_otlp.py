from __future__ import annotations

import asyncio

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from agent.exporters.otlp import OtlpExport
from agent.exporters.snapshot import Snapshot
from agent.samples import Point, labels


async def test_snapshot_values_reach_an_otlp_http_receiver_as_protobuf() -> None:
    received: list[ExportMetricsServiceRequest] = []

    async def handler(request: web.Request) -> web.Response:
        message = ExportMetricsServiceRequest()
        message.ParseFromString(await request.read())
        received.append(message)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/v1/metrics", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    snapshot = Snapshot()
    snapshot.replace("gpu", [Point("campwatch_gpu_power_watts", 312.5, labels(gpu=0, uuid="GPU-a")),
                             Point("campwatch_gpu_energy_joules_total", 9000.0, labels(gpu=0, uuid="GPU-a"))])
    export = OtlpExport(snapshot, "node-1", endpoint=f"http://127.0.0.1:{port}/v1/metrics", interval_s=3600)
    assert await asyncio.to_thread(export.flush)
    await asyncio.to_thread(export.shutdown)
    await runner.cleanup()

    assert received
    resource_metrics = received[0].resource_metrics[0]
    attrs = {a.key: a.value.string_value for a in resource_metrics.resource.attributes}
    assert attrs["service.name"] == "campwatch" and attrs["host.name"] == "node-1"
    metrics = {m.name: m for sm in resource_metrics.scope_metrics for m in sm.metrics}
    power = metrics["campwatch_gpu_power_watts"]
    assert power.unit == "W"
    point = power.gauge.data_points[0]
    assert point.as_double == 312.5
    assert {a.key: a.value.string_value for a in point.attributes} == {"gpu": "0", "uuid": "GPU-a"}
    energy = metrics["campwatch_gpu_energy_joules_total"]
    assert energy.sum.is_monotonic and energy.sum.data_points[0].as_double == 9000.0
