"""Grafana dashboards as data: each panel is a title, PromQL expressions and a unit. `python -m
agent.exporters.dashboards dashboards/` writes the JSON; a test checks the files are current, that
every metric a panel uses is in the catalog, and that the queries run on a real Prometheus."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.exporters.alerts import SLOS, Slo


@dataclass(frozen=True, slots=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""
    sparse: bool = False
    """May legitimately show nothing (no throttling, no XID, no drift yet)."""


@dataclass(frozen=True, slots=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]


H = 'host=~"$host"'

GPU = Dashboard("campwatch-gpu", "campwatch / GPU", "NVML telemetry per GPU: saturation, power, energy, health.", (
    Panel("GPU up", (Query(f"campwatch_gpu_up{{{H}}}", "{{host}} gpu{{gpu}}"),), "none", "stat"),
    Panel("Utilization", (Query(f"campwatch_gpu_utilization_ratio{{{H}}}", "{{host}} gpu{{gpu}}"),), "percentunit"),
    Panel("Memory used", (Query(f"campwatch_gpu_memory_used_bytes{{{H}}}", "{{host}} gpu{{gpu}}"),
                          Query(f"campwatch_gpu_memory_total_bytes{{{H}}}", "total {{host}} gpu{{gpu}}")), "bytes"),
    Panel("Power draw", (Query(f"campwatch_gpu_power_watts{{{H}}}", "{{host}} gpu{{gpu}}"),), "watt"),
    Panel("Energy per hour", (Query(f"increase(campwatch_gpu_energy_joules_total{{{H}}}[1h]) / 3.6e6",
                                    "{{host}} gpu{{gpu}}"),), "kwatth",
          description="kWh consumed over the last hour, from differences of the NVML energy counter."),
    Panel("Temperature", (Query(f"campwatch_gpu_temperature_celsius{{{H}}}", "{{host}} gpu{{gpu}}"),), "celsius"),
    Panel("SM clock", (Query(f"campwatch_gpu_sm_clock_hz{{{H}}}", "{{host}} gpu{{gpu}}"),), "hertz"),
    Panel("SM activity (GPM)", (Query(f"campwatch_gpu_sm_active_ratio{{{H}}}", "{{host}} gpu{{gpu}} SMs active"),
                                Query(f"campwatch_gpu_sm_occupancy_ratio{{{H}}}", "{{host}} gpu{{gpu}} occupancy")),
          "percentunit", sparse=True,
          description="Share of SMs busy and of warp slots filled over each cycle (GPM, Hopper and newer; "
                      "absent on older GPUs). Utilization counts any kernel running as busy; this does not."),
    Panel("Tensor pipes and memory bandwidth (GPM)",
          (Query(f"campwatch_gpu_tensor_active_ratio{{{H}}}", "{{host}} gpu{{gpu}} tensor"),
           Query(f"campwatch_gpu_dram_bandwidth_ratio{{{H}}}", "{{host}} gpu{{gpu}} DRAM bandwidth")),
          "percentunit", sparse=True,
          description="Decode is memory-bound: DRAM bandwidth near 1 with tensor pipes low is normal there."),
    Panel("NVLink throughput",
          (Query(f"rate(campwatch_gpu_nvlink_tx_bytes_total{{{H}}}[5m])", "{{host}} gpu{{gpu}} tx"),
           Query(f"rate(campwatch_gpu_nvlink_rx_bytes_total{{{H}}}[5m])", "{{host}} gpu{{gpu}} rx")),
          "Bps", sparse=True, description="From the NVML NVLink counters; absent on boards without NVLink."),
    Panel("Time throttled, by reason", (Query(f"rate(campwatch_gpu_throttle_seconds_total{{{H}}}[5m])",
                                              "{{host}} gpu{{gpu}} {{reason}}"),), "percentunit", sparse=True,
          description="Share of time the clocks were held back, per reason (NVML violation counters)."),
    Panel("Throttle reasons active", (Query(f"campwatch_gpu_throttle_active{{{H}}} == 1",
                                            "{{host}} gpu{{gpu}} {{reason}}"),), "none", sparse=True),
    Panel("XID errors (1h)", (Query(f"increase(campwatch_gpu_xid_errors_total{{{H}}}[1h])",
                                    "{{host}} gpu{{gpu}} xid {{xid}}"),), "none", sparse=True),
    Panel("ECC uncorrected errors", (Query(f"campwatch_gpu_ecc_uncorrected_errors_total{{{H}}}",
                                           "{{host}} gpu{{gpu}}"),), "none", sparse=True),
    Panel("Top processes by GPU memory", (Query(f"topk(10, campwatch_gpu_process_memory_bytes{{{H}}})",
                                                "{{host}} gpu{{gpu}} {{process}} ({{pid}})"),), "bytes", sparse=True),
))

ENGINE = Dashboard("campwatch-engine", "campwatch / serving engine",
                   "Version-independent SLIs from vLLM, SGLang and TGI /metrics.", (
    Panel("Engine up", (Query(f"campwatch_engine_up{{{H}}}", "{{server}} ({{kind}})"),), "none", "stat"),
    Panel("Generation tokens/s", (Query(f'campwatch_engine_generation_tokens_per_second{{{H},window="1m"}}',
                                        "{{model}}"),), "short"),
    Panel("Prompt tokens/s", (Query(f'campwatch_engine_prompt_tokens_per_second{{{H},window="1m"}}',
                                    "{{model}}"),), "short"),
    Panel("Requests/s", (Query(f'campwatch_engine_requests_per_second{{{H},window="1m"}}', "{{model}}"),), "reqps"),
    Panel("TTFT", (Query(f'campwatch_engine_ttft_seconds{{{H},window="5m"}}', "{{model}} p{{quantile}}"),), "s"),
    Panel("Inter-token latency", (Query(f'campwatch_engine_inter_token_latency_seconds{{{H},window="5m"}}',
                                        "{{model}} p{{quantile}}"),), "s"),
    Panel("End-to-end latency", (Query(f'campwatch_engine_e2e_latency_seconds{{{H},window="5m"}}',
                                       "{{model}} p{{quantile}}"),), "s"),
    Panel("Queue time", (Query(f'campwatch_engine_queue_time_seconds{{{H},window="5m"}}',
                               "{{model}} p{{quantile}}"),), "s"),
    Panel("Running / waiting",
          (Query(f"sum by (model) (campwatch_engine_requests_running{{{H}}})", "running {{model}}"),
           Query(f"sum by (model) (campwatch_engine_requests_waiting{{{H}}})", "waiting {{model}}")),
          "short"),
    Panel("KV-cache usage", (Query(f"campwatch_engine_kv_cache_usage_ratio{{{H}}}", "{{model}} engine {{engine}}"),),
          "percentunit"),
    Panel("Prefix-cache hit ratio", (Query(f'campwatch_engine_prefix_cache_hit_ratio{{{H},window="5m"}}',
                                           "{{model}}"),), "percentunit"),
    Panel("Proxy requests/s by status", (Query(f"sum by (status) (rate(campwatch_proxy_requests_total{{{H}}}[5m]))",
                                               "{{status}}"),), "reqps"),
    Panel("Proxy TTFT p99",
          (Query(f"histogram_quantile(0.99, sum by (le) (rate(campwatch_proxy_ttft_seconds_bucket{{{H}}}[5m])))",
                 "p99"),),
          "s", sparse=True),
))

COST = Dashboard("campwatch-cost", "campwatch / cost and verdict",
                 "Realized self-hosted $/Mtok against API baselines; does self-hosting still win?", (
    Panel("Self-hosted $/Mtok", (Query(f"campwatch_cost_per_mtok_usd{{{H}}}", "{{host}} {{basis}}"),), "currencyUSD"),
    Panel("API-equivalent $/Mtok", (Query(f"campwatch_api_cost_per_mtok_usd{{{H}}}", "{{host}} {{baseline}}"),),
          "currencyUSD"),
    # Verdict panels stay empty until cost.min_verdict_hours and min_verdict_tokens are measured.
    Panel("Camp holds (1 = self-hosting cheaper)", (Query(f"campwatch_camp_holds{{{H}}}", "{{host}} {{baseline}}"),),
          "none", "stat", sparse=True),
    Panel("Break-even tokens per month", (Query(f"campwatch_breakeven_tokens_per_month{{{H}}}",
                                                "{{host}} {{baseline}}"),), "short", sparse=True),
    Panel("Energy $/Mtok", (Query(f"campwatch_cost_energy_per_mtok_usd{{{H}}}", "{{host}}"),), "currencyUSD"),
    Panel("Energy per 1k tokens (GPUs with an energy counter)",
          (Query(f"campwatch_energy_joules_per_1k_tokens{{{H}}}", "{{host}}"),), "joule", sparse=True),
    Panel("Cost by team (cost window)", (Query(f"campwatch_cost_usd_total{{{H},basis=\"allocation\"}}",
                                               "{{host}} {{team}}"),), "currencyUSD", sparse=True),
    Panel("Team run rate against budget", (Query(f"campwatch_team_cost_run_rate_usd{{{H}}}", "{{host}} {{team}}"),
                                           Query(f"campwatch_team_budget_usd{{{H}}}", "budget {{team}}")),
          "currencyUSD", sparse=True),
    Panel("Output drift: share of descriptors drifted", (Query(f"campwatch_drift_share_drifted{{{H}}}",
                                                               "{{host}} {{model}}"),),
          "percentunit", sparse=True),
    Panel("Output drift: drifted features", (Query(f"campwatch_drift_detected{{{H}}} == 1",
                                                   "{{host}} {{model}} {{feature}}"),),
          "none", sparse=True),
    Panel("Rows dropped (10m)", (Query(f"increase(campwatch_dropped_total{{{H}}}[10m])", "{{host}} {{reason}}"),),
          "short", sparse=True),
    Panel("Collectors up", (Query(f"campwatch_collector_up{{{H}}}", "{{host}} {{collector}}"),), "none", "stat"),
))

def _slo_panels(slo: Slo) -> tuple[Panel, ...]:
    title = slo.title.capitalize()
    return (
        Panel(f"{title} SLO: share of requests over {slo.threshold_le}s",
              tuple(Query(f"{slo.ratio(w)}{{{H}}}", f"{w} {{{{model}}}} {{{{route}}}}") for w in ("5m", "1h")),
              "percentunit",
              description=f"Objective: {slo.objective:.0%} of requests at or under {slo.threshold_le}s, "
                          "from the proxy's histogram (recording rules in dashboards/alerts)."),
        Panel(f"{title}: error-budget burn rate (1h)",
              (Query(f"{slo.ratio('1h')}{{{H}}} / {slo.budget}", "{{model}} {{route}}"),), "none",
              description="1 spends the 30-day budget in exactly 30 days; the alerts page at 14.4 (1h and "
                          "5m) and at 6 (6h and 30m)."),
    )


SLO = Dashboard("campwatch-slo", "campwatch / SLOs",
                "Client-side latency SLOs and proxy errors, from the recording rules the alerts use.", (
    *(panel for slo in SLOS for panel in _slo_panels(slo)),
    Panel("Proxy requests/s by status (recorded)",
          (Query(f"sum by (status) (campwatch:proxy_requests:rate5m{{{H}}})", "{{status}}"),), "reqps"),
    Panel("Proxy 5xx share", (Query(f"campwatch:proxy_5xx:ratio_rate5m{{{H}}}", "{{model}} {{route}}"),),
          "percentunit", sparse=True),
))

DASHBOARDS: tuple[Dashboard, ...] = (GPU, ENGINE, COST, SLO)

_METRIC = re.compile(r"\b(campwatch_[a-z0-9_]+)")


def metrics_used(expr: str) -> set[str]:
    """campwatch series names a PromQL expression reads (_bucket/_sum/_count kept as written)."""
    return set(_METRIC.findall(expr))


def render(dashboard: Dashboard) -> dict[str, Any]:
    panels = []
    for i, panel in enumerate(dashboard.panels):
        width = 8 if panel.kind == "stat" else 12
        panels.append({
            "id": i + 1,
            "type": panel.kind,
            "title": panel.title,
            "description": panel.description,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": width, "x": (i % 2) * 12, "y": (i // 2) * 8},
            "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
            "targets": [{"refId": chr(ord("A") + j), "expr": q.expr, "legendFormat": q.legend,
                         "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                        for j, q in enumerate(panel.queries)],
        })
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["campwatch", "llm", "gpu"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
            {"name": "host", "type": "query", "label": "host", "includeAll": True, "multi": True,
             "allValue": ".*", "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": {"query": "label_values(campwatch_agent_info, host)", "refId": "host"},
             "definition": "label_values(campwatch_agent_info, host)", "refresh": 2},
        ]},
        "panels": panels,
    }


def write_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for dashboard in DASHBOARDS:
        path = folder / f"{dashboard.uid}.json"
        path.write_text(json.dumps(render(dashboard), indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "dashboards")):
        print(written)
