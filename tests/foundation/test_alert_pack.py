"""The alert pack: generated files are current, every alert is documented and unit-tested both
ways, the XID tiers are consistent, and the SLO rules read real histogram bounds."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from agent.capture.catalog import LATENCY_BUCKETS, TTFT_BUCKETS
from agent.exporters import alerts as pack
from agent.exporters.dashboards import DASHBOARDS, SLO

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "dashboards" / "alerts"
RUNBOOKS = ROOT / "docs" / "runbooks.md"


def test_committed_rules_and_prometheus_rule_match_their_declarations() -> None:
    assert (ALERTS / "campwatch.rules.yml").read_text() == pack.rules_text(), "run `make dashboards`"
    assert (ROOT / "docker" / "k8s" / "base" / "prometheusrule.yaml").read_text() == pack.prometheus_rule_text()


def test_prometheus_rule_manifest_carries_exactly_the_rule_file_groups() -> None:
    rules = yaml.safe_load((ALERTS / "campwatch.rules.yml").read_text())
    manifest = yaml.safe_load((ROOT / "docker" / "k8s" / "base" / "prometheusrule.yaml").read_text())
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["spec"]["groups"] == rules["groups"]


def test_the_pack_has_the_alerts_an_sre_plugs_in() -> None:
    names = {a.name for a in pack.alerts()}
    assert len(names) == len(pack.alerts()) >= 20
    required = {
        "CampwatchGpuSaturated", "CampwatchGpuMemoryNearFull", "CampwatchGpuThermalThrottling",
        "CampwatchGpuPowerCapped", "CampwatchGpuXidCritical", "CampwatchGpuEccUncorrectable",
        "CampwatchGpuRowRemapPending", "CampwatchGpuRowRemapFailed", "CampwatchGpuLost", "CampwatchEngineDown",
        "CampwatchSidecarDown", "CampwatchSidecarMissing", "CampwatchStoreUnwritable", "CampwatchSpoolGrowing",
        "CampwatchDroppingRecords", "CampwatchProxyTtftBudgetFastBurn", "CampwatchProxyLatencyBudgetSlowBurn",
        "CampwatchKvCacheFull", "CampwatchPreemptionSpike", "CampwatchProxy5xx", "CampwatchFeatureDrift",
        "CampwatchCampNoLongerHolds", "CampwatchTeamBudgetRunRate", "CampwatchEngineUnknownMetrics",
    }
    assert required <= names


def test_every_alert_has_severity_summary_description_and_its_own_runbook_section() -> None:
    anchors = {h.strip().lower() for h in re.findall(r"^### (\S+)\s*$", RUNBOOKS.read_text(), re.M)}
    rules = yaml.safe_load((ALERTS / "campwatch.rules.yml").read_text())["groups"]
    for rule in (r for g in rules for r in g["rules"] if "alert" in r):
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        notes = rule["annotations"]
        assert notes["summary"].strip() and notes["description"].strip()
        assert notes["runbook_url"] == f"{pack.RUNBOOK_URL}#{rule['alert'].lower()}"
        assert rule["alert"].lower() in anchors, f"docs/runbooks.md has no section for {rule['alert']}"
    assert anchors == {a.anchor for a in pack.alerts()}, "a runbook section without an alert"


def test_every_alert_has_promtool_cases_that_fire_and_that_stay_silent() -> None:
    tests = yaml.safe_load((ALERTS / "campwatch.rules.test.yml").read_text())["tests"]
    fires: set[str] = set()
    silent: set[str] = set()
    for test in tests:
        for case in test.get("alert_rule_test", []):
            (fires if case["exp_alerts"] else silent).add(case["alertname"])
    names = {a.name for a in pack.alerts()}
    assert names - fires == set()
    assert names - silent == set()


def test_sidecar_down_is_seen_both_by_up_and_by_absence_of_its_own_series() -> None:
    alerts = {a.name: a for a in pack.alerts()}
    assert f'up{{job="{pack.SIDECAR_JOB}"}} == 0' == alerts["CampwatchSidecarDown"].expr
    missing = alerts["CampwatchSidecarMissing"].expr
    assert f'absent(up{{job="{pack.SIDECAR_JOB}"}})' in missing
    assert f'absent(campwatch_agent_info{{job="{pack.SIDECAR_JOB}"}})' in missing


def test_xid_tiers_are_disjoint_and_match_the_runbook_table() -> None:
    codes = [x.code for x in pack.XID_CODES]
    assert len(codes) == len(set(codes))
    table = dict(re.findall(r"^\| (\d+) \| (critical|hardware|application) \| .+ \|$", RUNBOOKS.read_text(), re.M))
    assert {int(k): v for k, v in table.items()} == {x.code: x.tier for x in pack.XID_CODES}
    exprs = {a.name: a.expr for a in pack.alerts()}
    assert '"79|' in exprs["CampwatchGpuXidCritical"] or "|79|" in exprs["CampwatchGpuXidCritical"]
    assert "|31|" in exprs["CampwatchGpuXidApplication"] and "31" not in exprs["CampwatchGpuXidCritical"]


def test_new_or_increased_also_catches_a_series_born_above_zero() -> None:
    expr = pack.new_or_increased("m", "10m")
    assert expr == "(increase(m[10m]) > 0 or (m > 0 unless m offset 10m))"


def test_slo_thresholds_are_bounds_of_the_proxy_histograms() -> None:
    bounds = {"campwatch_proxy_ttft_seconds": TTFT_BUCKETS, "campwatch_proxy_latency_seconds": LATENCY_BUCKETS}
    for slo in pack.SLOS:
        assert float(slo.threshold_le) in bounds[slo.histogram]
        assert 0 < slo.budget < 0.1


def test_burn_rate_alerts_follow_the_workbook_windows_and_rates() -> None:
    alerts = {a.name: a for a in pack.alerts()}
    fast = alerts["CampwatchProxyTtftBudgetFastBurn"].expr
    slow = alerts["CampwatchProxyTtftBudgetSlowBurn"].expr
    assert fast.splitlines() == [
        "campwatch:proxy_ttft_bad:ratio_rate1h > 0.144 and campwatch:proxy_ttft_bad:ratio_rate5m > 0.144",
        "and on (host, model) sum by (host, model) (increase(campwatch_proxy_ttft_seconds_count[1h])) >= 20"]
    assert slow.splitlines() == [
        "campwatch:proxy_ttft_bad:ratio_rate6h > 0.06 and campwatch:proxy_ttft_bad:ratio_rate30m > 0.06",
        "and on (host, model) sum by (host, model) (increase(campwatch_proxy_ttft_seconds_count[6h])) >= 20"]


def test_every_recording_rule_an_alert_or_a_panel_reads_is_defined_and_every_one_is_read() -> None:
    defined = {r.name for r in pack.records()}
    exprs = [r.expr for g in pack.GROUPS for r in g.rules]
    exprs += [q.expr for d in DASHBOARDS for p in d.panels for q in p.queries]
    used = {m for expr in exprs for m in re.findall(r"\bcampwatch:[a-z0-9_:]+", expr)}
    assert used - defined == set()
    assert defined - used == set(), "a recording rule nothing reads"
    slo_panels = {q.expr for p in SLO.panels for q in p.queries}
    assert "campwatch:proxy_ttft_bad:ratio_rate5m{host=~\"$host\"}" in slo_panels
