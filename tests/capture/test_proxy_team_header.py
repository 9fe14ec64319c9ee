"""The proxy records the request's team header for cost attribution (issue 15)."""

from __future__ import annotations

import aiohttp

from agent.samples import RequestRecord
from agent.sim.model_server import SimulatedModelServer
from tests.capture.capture_stub import ProxyFactory, settle

CHAT = "/v1/chat/completions"


async def test_the_team_header_is_recorded_and_a_missing_or_disabled_one_is_none(
        sim: tuple[SimulatedModelServer, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    server, base = sim
    body = {"model": server.config.model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    proxy = await make_proxy(base)
    for headers in ({"X-Team": "  search  "}, {}):
        async with client.post(proxy.url + CHAT, json=body, headers=headers) as resp:
            assert resp.status == 200
    off = await make_proxy(base, capture={"team_header": ""})
    async with client.post(off.url + CHAT, json=body, headers={"X-Team": "search"}) as resp:
        assert resp.status == 200
    await settle()
    records = [r for r in proxy.sink.rows if isinstance(r, RequestRecord)]
    assert [r.team for r in records] == ["search", None]
    (ignored,) = [r for r in off.sink.rows if isinstance(r, RequestRecord)]
    assert ignored.team is None
