"""The deployment files are checked as far as this machine allows (no Docker engine here): they
parse, the campwatch settings they carry validate, the CLI flags they pass exist, and the
Prometheus config passes promtool."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import click
import pytest
import yaml

from agent.cli import main
from agent.config import load_settings

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


def test_kubernetes_sidecar_manifest_carries_a_valid_config() -> None:
    docs = list(yaml.safe_load_all((DOCKER / "k8s" / "campwatch-sidecar.yaml").read_text()))
    kinds = [d["kind"] for d in docs]
    assert kinds == ["ConfigMap", "Deployment", "Service"]
    toml_text = docs[0]["data"]["campwatch.toml"]
    overrides = tomllib.loads(toml_text)
    settings = load_settings(overrides=overrides, environ={})
    assert settings.proxy.upstream == "http://127.0.0.1:8000"
    pod = docs[1]["spec"]["template"]["spec"]
    assert pod["shareProcessNamespace"] is True
    sidecar = next(c for c in pod["containers"] if c["name"] == "campwatch")
    assert {p["containerPort"] for p in sidecar["ports"]} == {8001, 9400}
    with pytest.raises(click.exceptions.NoSuchOption):
        main.commands["run"].make_context("run", ["--no-such-flag"])


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
