"""The OpenTelemetry name, unit and attributes of every exported family, as data.

Prometheus names stay as they are (`campwatch_*`); OTLP uses OpenTelemetry semantic-convention names
where one exists with the same meaning and instrument kind (`hw.*` for GPUs, `gen_ai.server.*` for
serving latencies), and `campwatch.<area>.<rest>` otherwise, derived from the Prometheus name by one
rule, so a family added to a catalog is covered without an entry here. Several families may share one
semantic-convention name when an attribute tells them apart (`hw.gpu.utilization` by `hw.gpu.task`,
`hw.errors` by `error.type`).

Notes on names deliberately not used: `gen_ai.client.token.usage` is a per-request histogram, while
`campwatch_proxy_tokens_total` is a running counter; `gen_ai.server.time_per_output_token` is a
histogram, while the engine's inter-token latency is a quantile gauge; `hw.gpu.memory.utilization` is
used/limit, while NVML's memory utilization is memory-controller busy time; `hw.gpu.io` is a byte
counter, while the PCIe figures are rates. Those export under `campwatch.*`.

Semantic conventions consulted: hardware/gpu (hw.gpu.utilization, hw.gpu.memory.usage,
hw.gpu.memory.limit), hardware/common (hw.energy, hw.power, hw.errors), hardware/temperature
(hw.temperature), gen-ai/gen-ai-metrics (gen_ai.server.time_to_first_token,
gen_ai.server.request.duration); all at status Development."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from agent.metric_spec import MetricSpec
from agent.samples import Labels

Instrument = Literal["gauge", "counter", "updowncounter", "histogram"]


@dataclass(frozen=True, slots=True)
class OtelName:
    """How one family exports over OTLP: name, UCUM unit, instrument (None: from the family's kind),
    constant attributes added to every data point, and label renames (Prometheus label, OTel key)."""

    name: str
    unit: str
    instrument: Instrument | None = None
    attributes: Labels = ()
    renames: tuple[tuple[str, str], ...] = ()


_GPU_ID = (("uuid", "hw.id"),)
_GPU = (("hw.type", "gpu"),)
_G = "campwatch_gpu_"

SEMCONV: dict[str, OtelName] = {
    _G + "utilization_ratio": OtelName("hw.gpu.utilization", "1", None,
                                       (*_GPU, ("hw.gpu.task", "general")), _GPU_ID),
    _G + "encoder_utilization_ratio": OtelName("hw.gpu.utilization", "1", None,
                                               (*_GPU, ("hw.gpu.task", "encoder")), _GPU_ID),
    _G + "decoder_utilization_ratio": OtelName("hw.gpu.utilization", "1", None,
                                               (*_GPU, ("hw.gpu.task", "decoder")), _GPU_ID),
    _G + "memory_used_bytes": OtelName("hw.gpu.memory.usage", "By", "updowncounter", _GPU, _GPU_ID),
    _G + "memory_total_bytes": OtelName("hw.gpu.memory.limit", "By", "updowncounter", _GPU, _GPU_ID),
    _G + "power_watts": OtelName("hw.power", "W", None, _GPU, _GPU_ID),
    _G + "energy_joules_total": OtelName("hw.energy", "J", None, _GPU, _GPU_ID),
    _G + "temperature_celsius": OtelName("hw.temperature", "Cel", None,
                                         (("hw.sensor_location", "gpu_die"),), (("uuid", "hw.parent"),)),
    _G + "memory_temperature_celsius": OtelName("hw.temperature", "Cel", None,
                                                (("hw.sensor_location", "gpu_memory"),),
                                                (("uuid", "hw.parent"),)),
    _G + "ecc_corrected_errors_total": OtelName("hw.errors", "{error}", None,
                                                (*_GPU, ("error.type", "ecc_corrected")), _GPU_ID),
    _G + "ecc_uncorrected_errors_total": OtelName("hw.errors", "{error}", None,
                                                  (*_GPU, ("error.type", "ecc_uncorrected")), _GPU_ID),
    _G + "pcie_replay_errors_total": OtelName("hw.errors", "{error}", None,
                                              (*_GPU, ("error.type", "pcie_replay")), _GPU_ID),
    _G + "xid_errors_total": OtelName("hw.errors", "{error}", None, (*_GPU, ("error.type", "xid")), _GPU_ID),
    **{_G + f"nvlink_{kind}_errors_total": OtelName("hw.errors", "{error}", None,
                                                   (*_GPU, ("error.type", f"nvlink_{kind}")), _GPU_ID)
       for kind in ("crc_flit", "crc_data", "replay", "recovery")},
    "campwatch_proxy_ttft_seconds": OtelName("gen_ai.server.time_to_first_token", "s", None, (),
                                             (("model", "gen_ai.request.model"),)),
    "campwatch_proxy_latency_seconds": OtelName("gen_ai.server.request.duration", "s", None, (),
                                                (("model", "gen_ai.request.model"), ("route", "http.route"))),
}

UNIT_SUFFIXES: tuple[tuple[str, str, bool], ...] = (
    ("_bytes_per_second", "By/s", False), ("_tokens_per_second", "{token}/s", False),
    ("_per_second", "1/s", False), ("_seconds", "s", True), ("_bytes", "By", True), ("_watts", "W", True),
    ("_joules", "J", True), ("_ratio", "1", True), ("_celsius", "Cel", True), ("_hz", "Hz", True),
    ("_usd", "{USD}", True), ("_tokens", "{token}", False), ("_rows", "{row}", False),
    ("_days", "d", True),
)
"""(Prometheus name suffix, UCUM unit, whether the suffix leaves the OTel name), most specific first:
base units leave the name as OpenTelemetry asks; counted things and rates stay in it."""


def derived_name(prometheus_name: str) -> tuple[str, str]:
    """campwatch_engine_kv_cache_usage_ratio -> ("campwatch.engine.kv_cache_usage", "1");
    campwatch_engine_prompt_tokens_total -> ("campwatch.engine.prompt_tokens", "{token}")."""
    base = prometheus_name.removesuffix("_total")
    unit = "1"
    for suffix, ucum, strip in UNIT_SUFFIXES:
        if base.endswith(suffix) and base != "campwatch" + suffix:
            unit = ucum
            if strip:
                base = base.removesuffix(suffix)
            break
    rest = base.removeprefix("campwatch_")
    area, sep, tail = rest.partition("_")
    return ("campwatch." + (f"{area}.{tail}" if sep and tail else rest)), unit


def otel_name(spec: MetricSpec) -> OtelName:
    known = SEMCONV.get(spec.name)
    if known is not None:
        return known
    name, unit = derived_name(spec.name)
    return OtelName(name, unit)


def render_table(specs: Iterable[MetricSpec]) -> str:
    """docs/otlp.md's table of the families in `specs` (`python -m agent.publish docs/otlp.md`
    writes it for agent.catalog.ALL_METRICS)."""
    rows = ["| Prometheus family | OTLP name | unit | OTLP instrument | attributes added / renamed |",
            "|---|---|---|---|---|"]
    for spec in specs:
        target = otel_name(spec)
        instrument = target.instrument or spec.kind
        extra = [f"`{k}={v}`" for k, v in target.attributes] + [f"`{a}`→`{b}`" for a, b in target.renames]
        rows.append(f"| `{spec.name}` | `{target.name}` | `{target.unit}` | {instrument} | {', '.join(extra)} |")
    return "\n".join(rows) + "\n"


DOC_HEAD = """# OTLP export

`otlp.endpoint` (e.g. `http://collector:4318/v1/metrics`) turns on OTLP/HTTP (protobuf) export of
every family `/metrics` shows, read from the same snapshot every `otlp.interval_s` (60 s): gauges,
cumulative sums, and the proxy's histograms as OTLP histograms with explicit bounds. Resource
attributes: `service.name=campwatch`, `service.version`, `host.name` (the `host` setting), and
`k8s.pod.name`, `k8s.namespace.name`, `k8s.node.name` from `POD_NAME`, `POD_NAMESPACE`, `NODE_NAME`
when set (Kubernetes downward API); `OTEL_RESOURCE_ATTRIBUTES` adds more. Data points keep the
Prometheus labels as attributes (`host` included), renamed where a semantic convention names them.

Names follow the OpenTelemetry semantic conventions where one exists with the same meaning and
instrument (`hw.*` for GPUs, `gen_ai.server.*` for serving latencies; those conventions are at
status Development and may still change), and `campwatch.<area>.<rest>` otherwise, with base-unit
suffixes moved into the UCUM unit. The mapping is data in `agent/exporters/otel_names.py`; this
table is generated from it (`python -m agent.publish docs/otlp.md`) and a test keeps
it current.

"""

