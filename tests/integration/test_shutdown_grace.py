"""Issue 9, finding 3 (the shutdown side): SIGTERM ends `campwatch run` within shutdown_grace_s even
while a stream is open through the proxy and the database does not answer. On the old code the key
is unknown (exit 2); without it the proxy alone waited 10 s for the stream and a frozen PostgreSQL
held the last flush forever."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.integration.faults import Campwatch, EndlessStream
from tests.support.net import free_port
from tests.support.private_pg import PrivatePostgres

GRACE_S = 2.0
MARGIN_S = 4.0  # interpreter start-up is not in it; process teardown and a loaded machine are
CHAT = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hello"}]}


def _config(path: Path, store_url: str, metrics_port: int, proxy_port: int, upstream: str) -> Path:
    path.write_text(f"""
shutdown_grace_s = {GRACE_S}
[store]
url = "{store_url}"
flush_interval_s = 0.2
[gpu]
enabled = false
[metrics]
port = {metrics_port}
[proxy]
listen = "127.0.0.1:{proxy_port}"
upstream = "http://{upstream}"
[drift]
enabled = false
""")
    return path


async def _open_stream(session: aiohttp.ClientSession, proxy_port: int,
                       upstream: EndlessStream) -> aiohttp.ClientResponse:
    resp = await session.post(f"http://127.0.0.1:{proxy_port}/v1/chat/completions", json=CHAT)
    assert resp.status == 200
    assert (await asyncio.wait_for(resp.content.readline(), 10)).startswith(b"data:")
    await asyncio.wait_for(upstream.started.wait(), 10)
    return resp


async def _drain(resp: aiohttp.ClientResponse) -> None:
    """Read what the proxy still sends; ends when it cuts the stream (EOF or a broken payload)."""
    try:
        while await asyncio.wait_for(resp.content.readany(), 10):
            pass
    except aiohttp.ClientError:
        pass


async def _sigterm_and_check(cw: Campwatch, resp: aiohttp.ClientResponse, upstream: EndlessStream) -> None:
    code, elapsed = await cw.terminate(timeout=GRACE_S + 30)
    await _drain(resp)
    assert code == 0, cw.output
    assert elapsed < GRACE_S + MARGIN_S, f"exit took {elapsed:.1f}s\n{cw.output}"
    await asyncio.wait_for(upstream.closed.wait(), 5)  # the upstream connection was closed too
    assert "stopped;" in cw.output


async def test_sigterm_exits_0_within_the_grace_with_a_stream_open_and_the_sqlite_file_locked(tmp_path: Path) -> None:
    upstream = EndlessStream()
    address = await upstream.start()
    metrics, proxy = free_port(), free_port()
    db = tmp_path / "store.db"
    cw = Campwatch(["run", "--config", str(_config(tmp_path / "c.toml", f"sqlite:///{db}", metrics, proxy, address))])
    await cw.start()
    lock: sqlite3.Connection | None = None
    try:
        async with aiohttp.ClientSession() as session:
            await cw.wait_http(f"http://127.0.0.1:{metrics}/metrics", "campwatch_")
            lock = sqlite3.connect(db, timeout=20, isolation_level=None)
            lock.execute("BEGIN EXCLUSIVE")  # every write now waits for the busy timeout, then fails
            resp = await _open_stream(session, proxy, upstream)
            await _sigterm_and_check(cw, resp, upstream)
    finally:
        if lock is not None:
            lock.close()
        if cw.proc is not None and cw.proc.returncode is None:
            cw.proc.kill()
        await upstream.stop()


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    yield pg
    pg.destroy()


async def test_sigterm_exits_0_within_the_grace_with_a_stream_open_and_postgresql_frozen(
        tmp_path: Path, private_pg: PrivatePostgres) -> None:
    await asyncio.to_thread(private_pg.start)
    url = private_pg.url()
    upstream = EndlessStream()
    address = await upstream.start()
    metrics, proxy = free_port(), free_port()
    cw = Campwatch(["run", "--config", str(_config(tmp_path / "c.toml", url, metrics, proxy, address))])
    await cw.start()
    try:
        async with aiohttp.ClientSession() as session:
            await cw.wait_http(f"http://127.0.0.1:{metrics}/metrics", "campwatch_")
            done = await session.post(f"http://127.0.0.1:{proxy}/v1/chat/completions",
                                      json={**CHAT, "stream": False})
            assert done.status == 200
            await cw.wait_http(f"http://127.0.0.1:{metrics}/metrics", 'table="request_records"')
            private_pg.freeze()  # connected, then silent: no error, no answer
            resp = await _open_stream(session, proxy, upstream)
            again = await session.post(f"http://127.0.0.1:{proxy}/v1/chat/completions",
                                       json={**CHAT, "stream": False})
            assert again.status == 200  # queued behind a flush that never returns
            await asyncio.sleep(0.5)
            await _sigterm_and_check(cw, resp, upstream)
    finally:
        private_pg.thaw()
        if cw.proc is not None and cw.proc.returncode is None:
            cw.proc.kill()
        await upstream.stop()
