"""End to end on a real workload: the Azure conversation trace (agent/sim/data, CC-BY 4.0,
Patel et al., Splitwise, ISCA 2024) stored as proxy records, priced request by request through
the ledger and the report, checked against genai-prices called once per request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache

import pytest
from genai_prices import Usage, calc_price
from sqlalchemy import Engine

from agent.config import BaselineSettings, PricingSettings
from agent.cost.report import build_report
from agent.sim.trace import trace_rows
from tests.cost.cost_helpers import cost_settings, gpu_row, request_row, write

BASELINES = (BaselineSettings(provider="openai", model="gpt-4o"),
             BaselineSettings(provider="anthropic", model="claude-sonnet-4-5"),
             BaselineSettings(provider="deepseek", model="deepseek-chat"))


@pytest.fixture(scope="module")
def trace() -> list[tuple[datetime, int, int]]:
    return list(trace_rows())  # the one copy, shipped with the simulator


def test_the_fixture_is_the_whole_trace(trace: list[tuple[datetime, int, int]]) -> None:
    assert len(trace) == 19_366
    assert trace[0][0] == datetime(2023, 11, 16, 18, 15, 46, 680590, tzinfo=UTC)


def test_api_equivalent_of_the_azure_trace_matches_per_request_genai_prices(
        sqlite_engine: Engine, trace: list[tuple[datetime, int, int]]) -> None:
    write(sqlite_engine, "requests", [request_row(ts, p, g, host="azure", n=i) for i, (ts, p, g) in enumerate(trace)])
    start = datetime(2023, 11, 16, 18, tzinfo=UTC)
    write(sqlite_engine, "gpu", [gpu_row(start + timedelta(seconds=s), host="azure", util=0.4, joules=300.0 * s)
                                 for s in range(0, 7201, 60)])
    settings = cost_settings(baselines=BASELINES, pricing=PricingSettings(gpu_hourly_usd=Decimal("2.50")))

    report = build_report(sqlite_engine, settings, timedelta(hours=2), "azure", now=start + timedelta(hours=2))

    total_prompt = sum(p for _, p, _ in trace)
    total_gen = sum(g for _, _, g in trace)
    assert (report.total.totals.prompt_tokens, report.total.totals.generation_tokens) == (total_prompt, total_gen)
    assert report.total.totals.requests == 19_366
    api = {a.baseline: a for a in report.total.api}

    # gpt-4o has no tiers: $2.50 per million input, $10 per million output, by hand.
    gpt4o = (Decimal(total_prompt) * Decimal("2.5") + Decimal(total_gen) * Decimal(10)) / Decimal(10**6)
    assert api["openai/gpt-4o"].priced.total_usd == gpt4o
    assert api["openai/gpt-4o"].cost_usd == gpt4o
    assert api["openai/gpt-4o"].method == "requests"
    assert api["openai/gpt-4o"].per_mtok == gpt4o * Decimal(10**6) / Decimal(total_prompt + total_gen)

    @cache
    def sonnet(p: int, g: int) -> Decimal:
        return calc_price(Usage(input_tokens=p, output_tokens=g), "claude-sonnet-4-5", provider_id="anthropic",
                          genai_request_timestamp=start).total_price

    expected_sonnet = sum((sonnet(p, g) for _, p, g in trace), Decimal(0))
    assert api["anthropic/claude-sonnet-4-5"].priced.total_usd == expected_sonnet

    expected_deepseek = sum((calc_price(Usage(input_tokens=p, output_tokens=g), "deepseek-chat",
                                        provider_id="deepseek", genai_request_timestamp=ts).total_price
                             for ts, p, g in trace), Decimal(0))
    assert api["deepseek/deepseek-chat"].priced.total_usd == expected_deepseek
    # the trace ran 18:15-19:14 UTC, deepseek's off-peak half price
    assert expected_deepseek == (Decimal(total_prompt) * Decimal("0.135")
                                 + Decimal(total_gen) * Decimal("0.55")) / Decimal(10**6)

    verdicts = {v.baseline: v for v in report.total.verdicts}
    assert set(verdicts) == set(api)
    assert all(v.state != "unknown" for v in verdicts.values())
