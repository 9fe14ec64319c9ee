"""Alert rules and dashboards only use metrics campwatch exports; the rules pass promtool's unit
tests; the committed dashboard JSON is what the declarative panels generate."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from agent.catalog import exported_series_names
from agent.exporters.dashboards import DASHBOARDS, metrics_used, render

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "dashboards" / "alerts"


def rule_exprs() -> list[tuple[str, str]]:
    groups = yaml.safe_load((ALERTS / "campwatch.rules.yml").read_text())["groups"]
    return [(rule.get("alert") or rule["record"], rule["expr"]) for group in groups for rule in group["rules"]]


def test_every_metric_an_alert_rule_uses_is_exported() -> None:
    exported = exported_series_names()
    missing = {(name, m) for name, expr in rule_exprs() for m in metrics_used(expr)
               if m not in exported}
    assert missing == set()


def test_every_metric_a_dashboard_panel_uses_is_exported() -> None:
    exported = exported_series_names()
    missing = {(d.uid, p.title, m) for d in DASHBOARDS for p in d.panels for q in p.queries
               for m in metrics_used(q.expr) if m not in exported}
    assert missing == set()


def test_the_check_itself_catches_an_unknown_metric() -> None:
    assert metrics_used('rate(campwatch_gpu_made_up_total[5m]) > campwatch_gpu_up') == {
        "campwatch_gpu_made_up_total", "campwatch_gpu_up"}
    assert "campwatch_gpu_made_up_total" not in exported_series_names()


def test_committed_dashboards_match_their_declarations() -> None:
    for dashboard in DASHBOARDS:
        committed = json.loads((ROOT / "dashboards" / f"{dashboard.uid}.json").read_text())
        assert committed == render(dashboard), f"run `make dashboards` to regenerate {dashboard.uid}.json"


def test_dashboard_panels_have_unique_titles_and_valid_grafana_shape() -> None:
    for dashboard in DASHBOARDS:
        doc = render(dashboard)
        titles = [p["title"] for p in doc["panels"]]
        assert len(titles) == len(set(titles))
        for panel in doc["panels"]:
            assert panel["targets"] and all(re.fullmatch(r"[A-Z]", t["refId"]) for t in panel["targets"])
            assert panel["datasource"]["uid"] == "${datasource}"


def test_alert_rules_pass_promtool_unit_tests() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required in CI (.ci/run installs the Debian prometheus package)")
        pytest.skip("promtool not installed")
    check = subprocess.run([promtool, "check", "rules", "campwatch.rules.yml"], cwd=ALERTS,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run([promtool, "test", "rules", "campwatch.rules.test.yml"], cwd=ALERTS,
                            capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
