"""Issue 9, finding 9: credentials never leave the settings object unmasked. A marker password is
planted in every URL setting (and an OTLP header), good and bad variants; check-config, error
messages, a short `campwatch run` with proxy traffic, an engine scrape and a failing OTLP export
are then scanned: stdout/stderr, /metrics, /healthz and the SQLite files never hold the marker.
On the old code the marker showed in bad-URL errors, labels, rows and the proxy's startup log."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from agent.cli import main
from tests.integration.faults import Campwatch, EndlessStream
from tests.integration.sidecar import repo_root
from tests.support.net import free_port

MARKER = "S3cr3tMarker"
PAGE = (repo_root() / "tests" / "fixtures" / "vllm" / "datadog_vllm_metrics.txt").read_text()


def _good(tmp_path: Path, *, engine: str, upstream: str, otlp: str, metrics_port: int, proxy_port: int) -> str:
    return f"""
shutdown_grace_s = 2
[store]
url = "sqlite:///{tmp_path / 'store.db'}"
flush_interval_s = 0.2
[gpu]
enabled = false
[engine]
urls = ["http://scraper:{MARKER}@{engine}/metrics?token={MARKER}"]
interval_s = 0.5
[metrics]
port = {metrics_port}
[proxy]
listen = "127.0.0.1:{proxy_port}"
upstream = "http://proxy:{MARKER}@{upstream}"
[otlp]
endpoint = "http://otel:{MARKER}@{otlp}/v1/metrics?api_key={MARKER}"
interval_s = 0.5
headers = {{ Authorization = "Bearer {MARKER}" }}
[drift]
enabled = false
"""


def _check_config(tmp_path: Path, text: str) -> Result:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return CliRunner().invoke(main, ["check-config", str(path)], env={k: None for k in os.environ
                                                                        if k.startswith("CAMPWATCH_")})


def test_check_config_shows_every_url_setting_masked(tmp_path: Path) -> None:
    result = _check_config(tmp_path, _good(tmp_path, engine="e:8000", upstream="u:8000", otlp="o:4318",
                                           metrics_port=9400, proxy_port=8080).replace(
        f"sqlite:///{tmp_path / 'store.db'}", f"postgresql://svc:{MARKER}@db:5432/cw?password={MARKER}"))
    assert result.exit_code == 0, result.output
    out = result.output.replace("\n", " ")
    assert MARKER not in result.output
    for shown in ("postgresql://svc:***@db:5432/cw?password=***", "http://scraper:***@e:8000/metrics?token=***",
                  "http://proxy:***@u:8000", "http://otel:***@o:4318/v1/metrics?api_key=***"):
        assert shown in out


BAD = {
    "store.url": ('[store]\nurl = "mysql://svc:{m}@db/cw"', '[store]\nurl = "postgresql://svc:{m}@db:notaport/cw"'),
    "engine.urls": ('[engine]\nurls = ["ftp://scraper:{m}@e/metrics"]',
                    '[engine]\nurls = ["http://scraper:{m}@e:99999/metrics"]'),
    "proxy": ('[proxy]\nlisten = "127.0.0.1:8080"\nupstream = "ws://proxy:{m}@u:8000"',
              '[proxy]\nlisten = "127.0.0.1:8080"\nupstream = "http://proxy:{m}@u:0x50"'),
    "otlp.endpoint": ('[otlp]\nendpoint = "grpc://otel:{m}@o:4317"', '[otlp]\nendpoint = "http://otel:{m}@o:-1/v1"'),
    "otlp.headers": ('[otlp]\nheaders = {{ Authorization = ["Bearer {m}"] }}',
                     '[otlp]\nheaders = {{ Authorization = {{ token = "{m}" }} }}'),
}


@pytest.mark.parametrize(("key", "variant"), [(k, i) for k in BAD for i in (0, 1)])
def test_a_bad_url_setting_is_named_in_the_error_without_its_password(tmp_path: Path, key: str,
                                                                       variant: int) -> None:
    result = _check_config(tmp_path, BAD[key][variant].format(m=MARKER) + "\n")
    assert result.exit_code == 2, result.output
    assert key in result.stderr
    assert MARKER not in result.output


class _Engine:
    def __init__(self) -> None:
        self.authorization: list[str] = []

    async def metrics(self, request: web.Request) -> web.Response:
        self.authorization.append(request.headers.get("Authorization", ""))
        return web.Response(text=PAGE, content_type="text/plain")


async def test_a_run_with_proxy_traffic_engine_scrapes_and_otlp_export_never_shows_the_marker(tmp_path: Path) -> None:
    engine = _Engine()
    app = web.Application()
    app.add_routes([web.get("/metrics", engine.metrics)])
    engine_runner = web.AppRunner(app, access_log=None)
    await engine_runner.setup()
    engine_port = free_port()
    await web.TCPSite(engine_runner, "127.0.0.1", engine_port).start()
    upstream = EndlessStream()
    upstream_address = await upstream.start()
    metrics, proxy = free_port(), free_port()
    config = tmp_path / "run.toml"
    config.write_text(_good(tmp_path, engine=f"127.0.0.1:{engine_port}", upstream=upstream_address,
                            otlp=f"127.0.0.1:{free_port()}", metrics_port=metrics, proxy_port=proxy))
    cw = Campwatch(["run", "--config", str(config)])
    await cw.start()
    bodies: list[str] = []
    try:
        base = f"http://127.0.0.1:{metrics}"
        await cw.wait_http(f"{base}/metrics", "campwatch_engine_up{")
        async with aiohttp.ClientSession() as session:
            for path in ("/v1/chat/completions", "/v1/models"):
                async with session.post(f"http://127.0.0.1:{proxy}{path}", json={"model": "m", "messages": []}) as r:
                    bodies.append(await r.text())
        page = await cw.wait_http(f"{base}/metrics", 'table="request_records"')
        page = await cw.wait_http(f"{base}/metrics", 'table="engine_samples"')
        bodies += [page, await cw.wait_http(f"{base}/healthz")]
        await asyncio.sleep(1.2)  # a few OTLP export attempts fail against the closed port and are logged
        code, _ = await cw.terminate(timeout=30)
    finally:
        if cw.proc is not None and cw.proc.returncode is None:
            cw.proc.kill()
        await upstream.stop()
        await engine_runner.cleanup()
    assert code == 0, cw.output
    shown_engine = f"http://scraper:***@127.0.0.1:{engine_port}/metrics?token=***"
    assert f'server="{shown_engine}"' in page and f'collector="engine:{shown_engine}"' in page
    assert engine.authorization and engine.authorization[0].startswith("Basic ")  # the real credentials were used
    assert upstream.headers[0]["Authorization"].startswith("Basic ")
    with sqlite3.connect(tmp_path / "store.db") as db:
        assert {r[0] for r in db.execute("SELECT DISTINCT upstream FROM request_records")} == \
            {f"http://proxy:***@{upstream_address}"}
        assert {r[0] for r in db.execute("SELECT DISTINCT server FROM engine_samples")} == {shown_engine}
    files = sorted(tmp_path.glob("store.db*"))
    assert files and all(MARKER.encode() not in f.read_bytes() for f in files)
    assert MARKER not in cw.output
    assert "OTLP" in cw.output or "export" in cw.output.lower()  # the export failures were logged, masked
    assert all(MARKER not in body for body in bodies)
