"""Dashboards and alert rules against a real Prometheus that scraped a running campwatch.

campwatch runs as a user runs it (subprocess, fake NVML through LD_LIBRARY_PATH, the simulated
vLLM server as its engine and proxy upstream, real traffic through the proxy); Prometheus scrapes it
every second and evaluates the shipped rules. Then every dashboard query runs through Prometheus's
HTTP API: none may fail, and every panel not marked sparse must return data."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from agent.exporters.dashboards import DASHBOARDS
from agent.sim.model_server import DEFAULT_MODEL, SimServerConfig, SimulatedModelServer, start_server
from tests.integration.sidecar import Sidecar, repo_root
from tests.support.net import free_port

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]
RULES = repo_root() / "dashboards" / "alerts" / "campwatch.rules.yml"


def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("the prometheus binary is required in CI (.ci/run installs the Debian package)")
        pytest.skip("prometheus not installed (Debian package prometheus)")
    return binary


async def _traffic(proxy: str, n: int) -> int:
    ok = 0
    async with aiohttp.ClientSession() as session:
        for i in range(n):
            body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "word " * 50}],
                    "max_tokens": 12, "stream": i % 2 == 0}
            async with session.post(f"{proxy}/v1/chat/completions", json=body,
                                    headers={"Authorization": "Bearer sk-test"}) as response:
                await response.read()
                ok += response.status == 200
    return ok


async def _query(session: aiohttp.ClientSession, base: str, expr: str) -> dict:  # type: ignore[type-arg]
    async with session.get(f"{base}/api/v1/query", params={"query": expr}) as response:
        return await response.json()  # type: ignore[no-any-return]


async def test_every_dashboard_query_and_alert_rule_runs_on_real_prometheus(tmp_path: Path) -> None:
    binary = prometheus_binary()
    server = SimulatedModelServer(SimServerConfig(itl_seconds=0.002))
    server_runner, server_port = await start_server(server)
    proxy_port, prom_port = free_port(), free_port()
    sidecar = Sidecar(["--db", f"sqlite:///{tmp_path / 'p.db'}",
                       "--engine-url", f"http://127.0.0.1:{server_port}/metrics", "--engine-interval", "1",
                       "--proxy-listen", f"127.0.0.1:{proxy_port}", "--proxy-upstream", f"http://127.0.0.1:{server_port}",
                       "--host", "prom-node"], env={"CAMPWATCH_COST__INTERVAL_S": "2"})
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{RULES}"]
scrape_configs:
  - job_name: campwatch
    static_configs: [{{targets: ["127.0.0.1:{sidecar.metrics_port}"]}}]
""")
    await sidecar.start()
    prometheus = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{prom_port}"
    try:
        await sidecar.wait_for("campwatch_gpu_up{", "campwatch_engine_up{", timeout=60)
        assert await _traffic(f"http://127.0.0.1:{proxy_port}", 24) == 24
        await sidecar.wait_for("campwatch_cost_per_mtok_usd", "campwatch_engine_ttft_seconds", timeout=60)
        await asyncio.sleep(4)  # several Prometheus scrapes of the final state
        failures: list[str] = []
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                up = await _query(session, base, 'up{job="campwatch"}')
                if up.get("data", {}).get("result") and up["data"]["result"][0]["value"][1] == "1":
                    break
                await asyncio.sleep(0.5)
            # Recording rules (the SLO panels) need a few evaluations after the traffic: a panel
            # without data yet is asked again until a deadline, never judged on one early answer.
            pending = [(dashboard, panel, query) for dashboard in DASHBOARDS for panel in dashboard.panels
                       for query in panel.queries]
            deadline = time.monotonic() + 45
            while pending:
                waiting = []
                for dashboard, panel, query in pending:
                    expr = query.expr.replace("$host", ".*")
                    answer = await _query(session, base, expr)
                    if answer.get("status") != "success":
                        failures.append(f"{dashboard.uid}/{panel.title}: {answer.get('error')}")
                    elif not panel.sparse and not answer["data"]["result"]:
                        waiting.append((dashboard, panel, query))
                if not waiting or time.monotonic() > deadline:
                    failures += [f"{d.uid}/{p.title}: no data for {q.expr.replace('$host', '.*')}"
                                 for d, p, q in waiting]
                    break
                pending = waiting
                await asyncio.sleep(1.0)
            async with session.get(f"{base}/api/v1/rules") as response:
                rules = (await response.json())["data"]["groups"]
            # The guards must not cry wolf against a healthy sidecar (pending counts: `for` is minutes).
            async with session.get(f"{base}/api/v1/alerts") as response:
                active = {a["labels"]["alertname"] for a in (await response.json())["data"]["alerts"]}
        unhealthy = [(r["name"], r.get("lastError")) for g in rules for r in g["rules"] if r["health"] != "ok"]
        assert sum(len(g["rules"]) for g in rules) >= 10
        assert unhealthy == []
        guards = {"CampwatchSidecarDown", "CampwatchSidecarMissing", "CampwatchEngineDown", "CampwatchGpuDown",
                  "CampwatchStoreUnwritable", "CampwatchDroppingRecords", "CampwatchProxy5xx"}
        assert active & guards == set()
        assert failures == [], "\n".join(failures)
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=20)
        await sidecar.stop()
        await server_runner.cleanup()
