"""Prometheus alert and recording rules as data, like the dashboards.

`python -m agent.exporters.alerts` writes dashboards/alerts/campwatch.rules.yml and the Kubernetes
PrometheusRule that carries the same groups (docker/k8s/base/prometheusrule.yaml); tests check both
files are current, that every metric a rule reads is in the catalog, that every alert has a runbook
section and promtool cases that fire and that stay silent.

Conventions: every alert has a severity (critical pages, warning opens a ticket, info is for the
dashboard and the weekly review), a summary, a description and a runbook_url whose anchor is the
alert name in lower case. Counters whose series only appear at their first event (XID codes, drop
reasons) are read with `new_or_increased`, so the first event fires too.

Writing the files needs PyYAML (the dev extra); the sidecar never imports this module."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Severity = Literal["critical", "warning", "info"]

RUNBOOK_URL = os.environ.get("CAMPWATCH_RUNBOOK_BASE", "docs/runbooks.md")
"""Where docs/runbooks.md is published; each alert links to its own section (#alert-name). The shipped
files say docs/runbooks.md (its path in this repository): regenerate them with CAMPWATCH_RUNBOOK_BASE set
to the address where your team publishes the runbooks (a wiki, an internal Git host) to get links that
open from Alertmanager and Grafana."""

SIDECAR_JOB = "campwatch"
"""The scrape job's name: docker/prometheus.yml's job_name and the ServiceMonitor's jobLabel value."""


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    expr: str
    severity: Severity
    summary: str
    description: str
    for_: str = ""
    """How long the condition must hold; empty fires at the first evaluation (one-off events)."""

    @property
    def anchor(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Record:
    name: str
    expr: str


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    rules: tuple[Alert | Record, ...]


@dataclass(frozen=True, slots=True)
class XidCode:
    code: int
    tier: Literal["critical", "hardware", "application"]
    meaning: str


XID_CODES: tuple[XidCode, ...] = (
    # critical: the GPU needs a reset or the node a drain; work on it is lost or at risk.
    XidCode(48, "critical", "double-bit (uncorrectable) ECC error"),
    XidCode(62, "critical", "internal micro-controller halt"),
    XidCode(64, "critical", "ECC page retirement or row remapping recording failure"),
    XidCode(74, "critical", "NVLink error"),
    XidCode(79, "critical", "GPU has fallen off the bus"),
    XidCode(95, "critical", "uncontained ECC error: every application on the GPU is affected"),
    XidCode(119, "critical", "GSP RPC timeout"),
    XidCode(120, "critical", "GSP error"),
    XidCode(140, "critical", "unrecovered ECC error"),
    XidCode(143, "critical", "GPU initialization failure"),
    # hardware: the GPU or driver noticed a fault it contained; schedule a reset, watch for repeats.
    XidCode(38, "hardware", "driver firmware error"),
    XidCode(61, "hardware", "internal micro-controller breakpoint or warning"),
    XidCode(63, "hardware", "ECC page retirement or row remapping recorded (reset to apply)"),
    XidCode(92, "hardware", "high single-bit ECC error rate"),
    XidCode(94, "hardware", "contained ECC error: the application that hit it was stopped"),
    # application: usually the application's own fault (bad address, killed kernel), not the GPU's.
    XidCode(13, "application", "graphics engine exception (often an out-of-range access in a kernel)"),
    XidCode(31, "application", "GPU memory page fault (an illegal address in a kernel)"),
    XidCode(43, "application", "GPU stopped processing (the application's channel was reset)"),
    XidCode(45, "application", "preemptive cleanup after an earlier error or a killed process"),
    XidCode(68, "application", "video decoder (NVDEC) exception"),
    XidCode(69, "application", "graphics engine class error"),
)
"""Common XID codes and their meaning (NVIDIA's XID catalog), by what an operator must do."""


def xid_regex(tier: str) -> str:
    return "|".join(str(x.code) for x in XID_CODES if x.tier == tier)


def new_or_increased(series: str, window: str) -> str:
    """Grew within `window`, or appeared within it already above zero (increase() misses that case)."""
    return f"(increase({series}[{window}]) > 0 or ({series} > 0 unless {series} offset {window}))"


@dataclass(frozen=True, slots=True)
class Slo:
    """A latency SLO on the proxy's histogram: `objective` of events at or under `threshold_s`."""

    key: str
    title: str
    histogram: str
    threshold_le: str
    objective: float
    labels: str

    @property
    def budget(self) -> float:
        return round(1 - self.objective, 6)

    def ratio(self, window: str) -> str:
        return f"campwatch:{self.key}_bad:ratio_rate{window}"


SLOS: tuple[Slo, ...] = (
    Slo("proxy_ttft", "time to first token", "campwatch_proxy_ttft_seconds", "2.5", 0.99, "host, model"),
    Slo("proxy_latency", "end-to-end latency", "campwatch_proxy_latency_seconds", "40", 0.99,
        "host, route, model"),
)
SLO_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "6h")
BURN_RATES: tuple[tuple[str, str, str, float, Severity], ...] = (
    ("FastBurn", "1h", "5m", 14.4, "critical"),
    ("SlowBurn", "6h", "30m", 6.0, "critical"),
)
"""(suffix, long window, short window, burn rate, severity): the SRE workbook's two paging pairs;
14.4x spends 2 % of a 30-day budget in an hour, 6x spends 5 % in six hours."""
SLO_MIN_EVENTS = 20
"""Requests the long window must hold before a burn-rate alert may page: at a few requests an hour
one slow answer is already a 14.4x burn, which is noise, not an outage."""


def _le(threshold: str) -> str:
    # Prometheus 2 keeps the exposed "40.0"; Prometheus 3 normalizes it to "40" (or the reverse).
    return f'le=~"{threshold}(\\\\.0)?"' if "." not in threshold else f'le="{threshold}"'


def slo_records(slo: Slo) -> tuple[Record, ...]:
    out = []
    for w in SLO_WINDOWS:
        good = f"sum by ({slo.labels}) (rate({slo.histogram}_bucket{{{_le(slo.threshold_le)}}}[{w}]))"
        total = f"sum by ({slo.labels}) (rate({slo.histogram}_count[{w}]))"
        out.append(Record(slo.ratio(w), f"1 - ({good} / {total})"))
    return tuple(out)


def slo_alerts(slo: Slo) -> tuple[Alert, ...]:
    name = "".join(part.capitalize() for part in slo.key.split("_"))
    out = []
    for suffix, long, short, rate, severity in BURN_RATES:
        threshold = round(rate * slo.budget, 6)
        out.append(Alert(
            f"Campwatch{name}Budget{suffix}",
            f"{slo.ratio(long)} > {threshold} and {slo.ratio(short)} > {threshold}\n"
            f"and on ({slo.labels}) sum by ({slo.labels}) (increase({slo.histogram}_count[{long}])) "
            f">= {SLO_MIN_EVENTS}",
            severity,
            f"{slo.title.capitalize()} SLO of {{{{ $labels.model }}}} on {{{{ $labels.host }}}} is burning its "
            f"error budget {rate:g}x too fast",
            f"{{{{ $value | humanizePercentage }}}} of requests over the last {long} (and {short}) took longer "
            f"than {slo.threshold_le}s; the SLO allows {slo.budget:.0%}. At this rate the 30-day budget lasts "
            f"{30 / rate:.1f} days.",
            "2m",
        ))
    return tuple(out)


H = "{{ $labels.host }}"
GPU_ID = "GPU {{ $labels.gpu }} ({{ $labels.uuid }}) on {{ $labels.host }}"


def _xid_alert(name: str, tier: str, severity: Severity, what: str) -> Alert:
    codes = xid_regex(tier)
    return Alert(
        name, new_or_increased(f'campwatch_gpu_xid_errors_total{{xid=~"{codes}"}}', "10m"), severity,
        f"XID {{{{ $labels.xid }}}} ({tier}) on {GPU_ID}",
        f"{what} Codes in this tier: {codes.replace('|', ', ')}.")


GROUPS: tuple[Group, ...] = (
    Group("campwatch-gpu", (
        Alert("CampwatchGpuSaturated",
              "avg_over_time(campwatch_gpu_utilization_ratio[10m]) > 0.95\n"
              "and on (host) (sum by (host) (campwatch_engine_requests_waiting) > 0)",
              "warning", "GPU {{ $labels.gpu }} on {{ $labels.host }} is saturated and requests are queueing",
              "Utilization averaged {{ $value | humanizePercentage }} for 10 minutes while the engine had "
              "waiting requests: add capacity or shed load.", "10m"),
        Alert("CampwatchGpuMemoryNearFull",
              "campwatch_gpu_memory_used_bytes / campwatch_gpu_memory_total_bytes > 0.97",
              "warning", f"{GPU_ID} memory is {{{{ $value | humanizePercentage }}}} used",
              "Above the 90 % vLLM reserves by default: another process shares the GPU or the engine's memory "
              "setting is too high; the next allocation may fail with out-of-memory.", "15m"),
        Alert("CampwatchGpuThermalThrottling",
              'campwatch_gpu_throttle_active{reason=~"sw_thermal|hw_thermal"} == 1',
              "warning", f"{GPU_ID} is throttled: {{{{ $labels.reason }}}}",
              "Clocks are held back because the GPU is too hot; throughput drops until cooling recovers.", "5m"),
        Alert("CampwatchGpuHardwareSlowdown",
              'campwatch_gpu_throttle_active{reason=~"hw_slowdown|hw_power_brake"} == 1',
              "critical", f"{GPU_ID} is in hardware slowdown: {{{{ $labels.reason }}}}",
              "Hardware slowdown halves the clocks or more (overheating, or the power-brake signal from the "
              "power supply); check the node's power and cooling.", "5m"),
        Alert("CampwatchGpuPowerCapped",
              'campwatch_gpu_throttle_active{reason="sw_power_cap"} == 1',
              "info", f"{GPU_ID} has been power-capped for 30 minutes",
              "The driver holds clocks back to stay under the power limit; under full load this is normal, "
              "but a lowered limit (nvidia-smi -pl) costs throughput.", "30m"),
        _xid_alert("CampwatchGpuXidCritical", "critical", "critical",
                   "The GPU needs a reset or the node a drain; requests on it are failing or at risk."),
        _xid_alert("CampwatchGpuXidHardware", "hardware", "warning",
                   "The GPU or driver contained a fault; schedule a reset and watch for repeats."),
        _xid_alert("CampwatchGpuXidApplication", "application", "info",
                   "Usually the application's fault (illegal address, killed kernel), not the hardware's."),
        Alert("CampwatchGpuXidUnknown",
              new_or_increased(f'campwatch_gpu_xid_errors_total{{xid!~"{"|".join(str(x.code) for x in XID_CODES)}"}}',
                               "10m"),
              "warning", f"XID {{{{ $labels.xid }}}} (not in campwatch's table) on {GPU_ID}",
              "Look the code up in NVIDIA's XID catalog and add it to agent/exporters/alerts.py XID_CODES."),
        Alert("CampwatchGpuEccUncorrectable",
              "increase(campwatch_gpu_ecc_uncorrected_errors_total[10m]) > 0",
              "critical", f"{GPU_ID} reported uncorrectable ECC errors in the last 10 minutes",
              "Data in GPU memory was corrupted; the application using it must be restarted and the GPU reset "
              "so the bad row is remapped."),
        Alert("CampwatchGpuRowRemapPending",
              "campwatch_gpu_remapped_rows_pending == 1 or campwatch_gpu_retired_pages_pending == 1",
              "warning", f"{GPU_ID} has a memory row remapping waiting for a GPU reset",
              "The remap only takes effect after a reset; until then the faulty row can fail again. Drain and "
              "reset the GPU in the next window.", "5m"),
        Alert("CampwatchGpuRowRemapFailed",
              "campwatch_gpu_remapped_rows_failed == 1",
              "critical", f"{GPU_ID} failed to remap a memory row",
              "The GPU has run out of spare rows or the remap failed: it cannot heal itself; take it out of "
              "service and open an RMA."),
        Alert("CampwatchGpuDown",
              "campwatch_gpu_up == 0",
              "critical", f"{GPU_ID} cannot be read (lost or failing)",
              "NVML calls for this GPU fail; it may have fallen off the bus (XID 79) or the driver is wedged.",
              "2m"),
        Alert("CampwatchGpuLost",
              "count by (host) (campwatch_gpu_up offset 1h) > count by (host) (campwatch_gpu_up)",
              "critical", "{{ $labels.host }} shows fewer GPUs than an hour ago",
              "A GPU disappeared from NVML's list (fallen off the bus, or the driver was reloaded without it); "
              "campwatch now watches and costs only the GPUs it still sees.", "5m"),
    )),
    Group("campwatch-engine", (
        Alert("CampwatchEngineDown",
              "campwatch_engine_up == 0",
              "critical", f"Model server {{{{ $labels.server }}}} on {H} is not answering /metrics",
              "campwatch's scrape of the engine fails: the server is down, restarting, or its URL changed.",
              "2m"),
        Alert("CampwatchKvCacheFull",
              "campwatch_engine_kv_cache_usage_ratio > 0.95\n"
              "and on (host, server, model, engine) (campwatch_engine_requests_waiting > 0)",
              "warning",
              f"KV cache of {{{{ $labels.model }}}} on {H} is {{{{ $value | humanizePercentage }}}} full "
              "with requests waiting",
              "New requests wait for cache blocks; expect queueing and preemptions.", "5m"),
        Alert("CampwatchPreemptionSpike",
              "sum by (host, server, model) (rate(campwatch_engine_preemptions_total[5m])) > 0.1",
              "warning", f"{{{{ $labels.model }}}} on {H} preempts {{{{ $value | printf \"%.2f\" }}}} requests/s",
              "The engine evicts running requests to free KV cache and recomputes them later: latency rises "
              "and GPU time is wasted.", "10m"),
        Alert("CampwatchEngineUnknownMetrics",
              "campwatch_engine_unmapped_metrics > 0",
              "info", f"{{{{ $value }}}} engine metric families on {{{{ $labels.server }}}} ({H}) are unknown to "
              "campwatch",
              "The engine exposes families campwatch's metric map does not know (usually an engine upgrade "
              "renamed them); the SLIs built from them may be missing.", "30m"),
        *(rule for slo in SLOS for rule in slo_records(slo)),
        *(alert for slo in SLOS for alert in slo_alerts(slo)),
    )),
    Group("campwatch-proxy", (
        Record("campwatch:proxy_requests:rate5m",
               "sum by (host, route, model, status) (rate(campwatch_proxy_requests_total[5m]))"),
        Record("campwatch:proxy_5xx:ratio_rate5m",
               'sum by (host, route, model) (campwatch:proxy_requests:rate5m{status=~"5.."})\n'
               "/ sum by (host, route, model) (campwatch:proxy_requests:rate5m)"),
        Alert("CampwatchProxy5xx",
              "campwatch:proxy_5xx:ratio_rate5m > 0.05\n"
              "and on (host, route, model) sum by (host, route, model) (campwatch:proxy_requests:rate5m) > 0.05",
              "warning",
              f"{{{{ $value | humanizePercentage }}}} of {{{{ $labels.route }}}} requests for "
              f"{{{{ $labels.model }}}} on {H} get a 5xx from the proxy",
              "The proxy answers 5xx when the upstream is down, times out or breaks the stream "
              "(campwatch_proxy_errors_total has the reason).", "5m"),
    )),
    Group("campwatch-agent", (
        Alert("CampwatchSidecarDown",
              f'up{{job="{SIDECAR_JOB}"}} == 0',
              "critical", "campwatch on {{ $labels.instance }} cannot be scraped",
              "Prometheus cannot reach campwatch's /metrics: the sidecar is down, restarting, or listening "
              "elsewhere. GPU, engine and cost alerts for this host are blind until it is back.", "2m"),
        Alert("CampwatchSidecarMissing",
              f'absent(up{{job="{SIDECAR_JOB}"}})\n'
              f'or (absent(campwatch_agent_info{{job="{SIDECAR_JOB}"}})'
              f' unless on (job) up{{job="{SIDECAR_JOB}"}} == 0)\n'
              f'or (up{{job="{SIDECAR_JOB}"}} == 1 unless on (job, instance) campwatch_agent_info)',
              "critical", "No campwatch series from job " + SIDECAR_JOB + "{{ with $labels.instance }} on {{ . }}"
              "{{ end }}",
              "Either the scrape job has no target at all (service discovery lost it) or a target answers "
              "without campwatch's own series (another exporter on campwatch's port).", "5m"),
        Alert("CampwatchCollectorFailing",
              "campwatch_collector_up == 0",
              "warning", "campwatch collector {{ $labels.collector }} on {{ $labels.instance }} is failing",
              "The collector's last runs failed; its series are stale. campwatch_collector_errors_total "
              "counts the failures and the sidecar's log has the reason.", "5m"),
        Alert("CampwatchStoreUnwritable",
              "campwatch_store_up == 0",
              "critical", "campwatch on {{ $labels.instance }} cannot write to its store",
              "Rows go to the spool until the store is back; when the spool is full they are dropped.", "2m"),
        Alert("CampwatchSpoolGrowing",
              "deriv(campwatch_spool_bytes[15m]) > 0 and campwatch_spool_bytes > 0",
              "warning", "campwatch's spool on {{ $labels.instance }} has grown for 15 minutes",
              "The store takes rows slower than they arrive; the spool grows by {{ $value | humanize1024 }}B "
              "per second.", "15m"),
        Alert("CampwatchStoreLagging",
              "campwatch_store_oldest_unwritten_seconds > 900",
              "warning", "campwatch on {{ $labels.instance }} has rows waiting {{ $value | humanizeDuration }}",
              "The oldest row not yet in the store is older than 15 minutes: reports and the cost verdict "
              "lag behind.", "5m"),
        Alert("CampwatchDroppingRecords",
              new_or_increased("campwatch_dropped_total", "10m"),
              "warning", "campwatch on {{ $labels.instance }} is dropping rows ({{ $labels.reason }})",
              "Rows were lost for good (reason {{ $labels.reason }}): the store is slow or down, or it rejected "
              "them."),
    )),
    Group("campwatch-drift", (
        # Dataset-level drift: half the output descriptors moved. A single feature's p-value test alone
        # fires by chance about once in 20 checks, hence the info severity and the 3 h hold.
        Alert("CampwatchOutputDrift",
              "campwatch_drift_share_drifted >= 0.5",
              "warning",
              "Output drift on {{ $labels.model }} ({{ $labels.host }}): {{ $value | humanizePercentage }} of "
              "output descriptors moved away from the reference window",
              "Run `campwatch drift --last --model {{ $labels.model }}` for the features and their scores.",
              "30m"),
        Alert("CampwatchFeatureDrift",
              "campwatch_drift_detected == 1",
              "info", "Output feature {{ $labels.feature }} of {{ $labels.model }} ({{ $labels.host }}) drifted",
              "The feature was found drifted in every drift check for 3 hours.", "3h"),
    )),
    Group("campwatch-cost", (
        Alert("CampwatchCampNoLongerHolds",
              "campwatch_camp_holds == 0",
              "info", "Self-hosting is no longer cheaper than {{ $labels.baseline }}",
              "Run `campwatch cost --since 30d` for the figures and the break-even volume.", "1h"),
        Alert("CampwatchTeamBudgetRunRate",
              "max by (team) (campwatch_team_cost_run_rate_usd)\n"
              "> on (team) (max by (team) (campwatch_team_budget_usd) > 0)",
              "warning", "Team {{ $labels.team }} is on course to spend ${{ $value | printf \"%.0f\" }} this month, "
                         "over its budget",
              "The projected monthly spend (campwatch_team_cost_run_rate_usd) exceeds the team's budget; "
              "campwatch_team_cost_month_to_date_usd has what is spent so far.", "1h"),
    )),
)


def alerts() -> list[Alert]:
    return [r for g in GROUPS for r in g.rules if isinstance(r, Alert)]


def records() -> list[Record]:
    return [r for g in GROUPS for r in g.rules if isinstance(r, Record)]


def _rule(rule: Alert | Record) -> dict[str, Any]:
    if isinstance(rule, Record):
        return {"record": rule.name, "expr": rule.expr}
    out: dict[str, Any] = {"alert": rule.name, "expr": rule.expr}
    if rule.for_:
        out["for"] = rule.for_
    out["labels"] = {"severity": rule.severity}
    out["annotations"] = {"summary": rule.summary, "description": rule.description,
                          "runbook_url": f"{RUNBOOK_URL}#{rule.anchor}"}
    return out


def rule_groups() -> list[dict[str, Any]]:
    return [{"name": g.name, "rules": [_rule(r) for r in g.rules]} for g in GROUPS]


def dump(doc: Any) -> str:
    """YAML with multi-line expressions as literal blocks, keys in declaration order."""
    import yaml  # a development dependency: imported only when writing the files

    class Dumper(yaml.SafeDumper):  # type: ignore[misc]
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value + ("\n" if style else ""), style=style)

    Dumper.add_representer(str, text)
    return str(yaml.dump(doc, Dumper=Dumper, sort_keys=False, width=1_000_000, allow_unicode=True))


RULES_HEADER = """\
# campwatch alert and recording rules. GENERATED by `make dashboards` from agent/exporters/alerts.py:
# edit that file, not this one. Each alert's runbook is in docs/runbooks.md; promtool unit tests are in
# campwatch.rules.test.yml.
"""

PROMETHEUS_RULE_HEADER = """\
# The alert pack as a prometheus-operator PrometheusRule: GENERATED by `make dashboards` from
# agent/exporters/alerts.py, the same groups as dashboards/alerts/campwatch.rules.yml (a test checks).
"""


def rules_text() -> str:
    return RULES_HEADER + dump({"groups": rule_groups()})


def prometheus_rule_text() -> str:
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "campwatch", "labels": {"app.kubernetes.io/name": "campwatch",
                                                     "app.kubernetes.io/part-of": "campwatch"}},
        "spec": {"groups": rule_groups()},
    }
    return PROMETHEUS_RULE_HEADER + dump(doc)


def write_all(root: Path) -> list[Path]:
    rules = root / "dashboards" / "alerts" / "campwatch.rules.yml"
    manifest = root / "docker" / "k8s" / "base" / "prometheusrule.yaml"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text(rules_text())
    manifest.write_text(prometheus_rule_text())
    return [rules, manifest]


if __name__ == "__main__":
    for written in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(written)
