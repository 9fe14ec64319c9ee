"""No prompt or output text reaches the database unless text capture is on, and then only redacted;
the exported metric families are exactly the declared ones."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import aiohttp
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import String, Text, select

from agent.capture.catalog import PROXY_METRICS
from agent.samples import CapturedOutput, RequestRecord, Row
from agent.store.schema import metadata
from tests.capture.capture_stub import MODEL, OUTPUT, PROMPT, ProxyFactory, StubUpstream, settle
from tests.support.db import sqlite_url_in, tables_engine
from tests.support.rows import write_rows

CHAT = "/v1/chat/completions"
API_KEY = "sk-live-PRIVATE-0123456789"


async def _traffic(proxy_url: str, client: aiohttp.ClientSession) -> None:
    messages = [{"role": "user", "content": PROMPT}]
    for stream in (False, True):
        async with client.post(proxy_url + CHAT, json={"model": MODEL, "messages": messages, "stream": stream},
                               headers={"Authorization": f"Bearer {API_KEY}"}) as resp:
            assert OUTPUT.split()[0] in (await resp.text())


def _store(rows: Sequence[Row], tmp_path: Path) -> list[str]:
    """Insert rows through the store's one row mapping and return every text value in every table."""
    engine = tables_engine(sqlite_url_in(tmp_path, "capture.db"))
    write_rows(engine, rows)
    texts: list[str] = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            for row in conn.execute(select(*columns)) if columns else ():
                texts += [value for value in row if isinstance(value, str)]
    engine.dispose()
    return texts


async def test_the_database_holds_no_prompt_output_or_key_when_text_capture_is_off(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession,
        tmp_path: Path) -> None:
    _, base = stub
    proxy = await make_proxy(base)
    await _traffic(proxy.url, client)
    await settle()
    assert len(proxy.sink.rows) == 2 and all(isinstance(r, RequestRecord) for r in proxy.sink.rows)
    texts = _store(proxy.sink.rows, tmp_path)
    assert MODEL in texts  # the scan does see the stored strings
    secrets = [PROMPT, OUTPUT, API_KEY, "Bluebird-7731", "ana@example.org", "confidential", "secret project"]
    leaks = [(s, t) for t in texts for s in secrets if s.lower() in t.lower()]
    assert leaks == []


async def test_sampled_text_capture_stores_only_redacted_output_with_its_own_expiry(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession,
        tmp_path: Path) -> None:
    _, base = stub
    proxy = await make_proxy(base, capture={"store_text": True, "text_sample_ratio": 1.0,
                                            "text_retention_days": 2.0})
    await _traffic(proxy.url, client)
    await settle()
    captured = [r for r in proxy.sink.rows if isinstance(r, CapturedOutput)]
    assert len(captured) == 2
    assert all(c.text == OUTPUT.replace("ana@example.org", "[EMAIL]") for c in captured)
    assert all((c.expires_at - c.ts).days == 2 for c in captured)
    texts = _store(proxy.sink.rows, tmp_path)
    assert not any(PROMPT in t or "ana@example.org" in t or API_KEY in t for t in texts)
    assert proxy.value("campwatch_proxy_outputs_captured_total") == 2


async def test_a_zero_sample_ratio_captures_nothing(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = stub
    proxy = await make_proxy(base, capture={"store_text": True, "text_sample_ratio": 0.0})
    await _traffic(proxy.url, client)
    await settle()
    assert not any(isinstance(r, CapturedOutput) for r in proxy.sink.rows)


async def test_exported_families_are_exactly_the_declared_ones_with_their_kinds_and_labels(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = stub
    proxy = await make_proxy(base)
    await _traffic(proxy.url, client)
    await settle()
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(proxy.registry).decode())}
    declared = {spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name: spec
                for spec in PROXY_METRICS}
    # families without a series yet (no error so far) show nothing, as every snapshot family does
    assert set(families) <= set(declared)
    assert set(declared) - set(families) == {"campwatch_proxy_errors", "campwatch_proxy_record_errors",
                                             "campwatch_proxy_client_aborts"}
    for name, spec in declared.items():
        if name not in families:
            continue
        assert families[name].type == spec.kind, name
        for sample in families[name].samples:
            if not sample.name.endswith("_created"):
                assert set(sample.labels) - {"le"} == set(spec.labels), (name, sample.labels)
    assert proxy.value("campwatch_proxy_requests_total", route=CHAT, model=MODEL, status="200") == 2
    assert proxy.value("campwatch_proxy_tokens_total", direction="prompt") == 22
    assert proxy.value("campwatch_proxy_tokens_total", direction="cached_prompt") == 6
    assert proxy.value("campwatch_proxy_ttft_seconds_count", model=MODEL) == 1  # the streamed one only
    assert proxy.value("campwatch_proxy_latency_seconds_count", route=CHAT, model=MODEL) == 2


async def test_unknown_routes_export_as_other_but_are_recorded_with_their_path(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = stub
    proxy = await make_proxy(base)
    async with client.get(proxy.url + "/v1/files/file-abc?secret=1") as resp:
        assert resp.status == 200
    await settle()
    assert proxy.value("campwatch_proxy_requests_total", route="other", model="", status="200") == 1
    assert proxy.sink.rows[-1].route == "/v1/files/file-abc"  # type: ignore[union-attr]
