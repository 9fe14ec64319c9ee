"""The cost report: both bases hand-checked, fleet totals, exported points, JSON and the rich view."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from rich.console import Console
from sqlalchemy import Engine

from agent.config import BaselineSettings, PlanQuarter
from agent.cost.catalog import COST_METRICS
from agent.cost.render import render_report
from agent.cost.report import build_report, report_points, report_to_json, split_io
from tests.cost.cost_helpers import T0, at, cost_settings, engine_row, request_row, steady_host, write

H = timedelta(hours=1)
SETTINGS = cost_settings(overhead_usd_per_month=Decimal("730"))
TOKENS = 359_000 + 89_750 + 360_000 + 90_000


def test_both_bases_and_the_input_output_split_by_hand(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine)
    report = build_report(sqlite_engine, SETTINGS, timedelta(hours=2), "h1", now=T0 + 2 * H)
    scope = report.total
    assert scope.scope == "h1"
    assert scope.totals.tokens == TOKENS
    assert scope.allocation.total_usd == Decimal("9.2")  # 2 GPU-hours at $3.60 + 2 hours of overhead
    assert scope.usage.total_usd == Decimal("5.6")  # half the GPU time was busy
    assert scope.allocation.per_mtok == Decimal("9.2") * 10**6 / TOKENS
    prompt, generation = 719_000, 179_750
    unit = Decimal("9.2") / (prompt + 4 * generation)  # an output token weighs 4 input tokens
    assert scope.allocation.input_per_mtok == pytest.approx(unit * 10**6)
    assert scope.allocation.output_per_mtok == pytest.approx(4 * unit * 10**6)
    assert scope.totals.utilization == pytest.approx(0.5)


def test_split_io_keeps_the_total() -> None:
    inp, out = split_io(Decimal(10), 3_000_000, 500_000, Decimal(4))
    assert inp is not None and out is not None
    assert inp * 3 + out * Decimal("0.5") == pytest.approx(Decimal(10))
    assert split_io(Decimal(10), 0, 0, Decimal(4)) == (None, None)


def test_the_run_rate_plan_review_and_verdict_by_hand(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine)
    settings = cost_settings(overhead_usd_per_month=Decimal("730"), plan=(
        PlanQuarter(quarter="2026-Q1", tokens_per_month=300_000_000, cost_per_month_usd=Decimal("3000")),
        PlanQuarter(quarter="2026-Q2", tokens_per_month=1, cost_per_month_usd=Decimal("1"))))
    report = build_report(sqlite_engine, settings, timedelta(hours=2), "h1", now=T0 + 2 * H)
    rate = report.total.run_rate
    assert rate is not None
    assert rate.tokens_per_month == Decimal(TOKENS * 365)  # two hours measured, 730 in a month
    assert rate.fixed_usd_per_month == Decimal("9.2") * 365
    q1, q2 = report.plan
    assert q1.actual_tokens_per_month == Decimal(TOKENS * 365)
    assert q1.tokens_ratio == pytest.approx(TOKENS * 365 / 300_000_000)
    assert q2.hours == 0 and q2.actual_tokens_per_month is None
    (verdict,) = report.total.verdicts
    api_per_mtok = report.total.api[0].per_mtok
    assert api_per_mtok is not None
    assert verdict.api_usd_per_month == pytest.approx(api_per_mtok * Decimal(TOKENS * 365) / 10**6)
    assert verdict.state == "api_cheaper"  # 0.9 Mtok an hour does not pay for an H100 at $3.60


def test_a_fleet_report_adds_up_its_hosts(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine, host="h1")
    steady_host(sqlite_engine, host="h2", gpus=2, prompt_per_step=4000, gen_per_step=2000)
    report = build_report(sqlite_engine, SETTINGS, timedelta(hours=2), None, now=T0 + 2 * H)
    assert [s.scope for s in report.hosts] == ["h1", "h2"]
    assert report.total.scope == "fleet"
    h1, h2 = report.hosts
    assert report.total.totals.tokens == h1.totals.tokens + h2.totals.tokens
    assert report.total.allocation.total_usd == h1.allocation.total_usd + h2.allocation.total_usd
    savings = [v.savings_usd_per_month for v in (h1.verdicts[0], h2.verdicts[0], report.total.verdicts[0])]
    assert savings[0] is not None and savings[1] is not None
    assert savings[2] == savings[0] + savings[1]


def test_exported_points_are_declared_in_the_catalog_with_their_labels(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine)
    settings = cost_settings(baselines=(BaselineSettings(provider="openai", model="gpt-4o"),
                                        BaselineSettings(provider="deepseek", model="deepseek-chat")))
    points = report_points(build_report(sqlite_engine, settings, timedelta(hours=2), "h1", now=T0 + 2 * H))
    specs = {spec.name: spec for spec in COST_METRICS}
    for point in points:
        assert point.name in specs
        assert tuple(name for name, _ in point.labels) == specs[point.name].labels
    names = {(p.name, dict(p.labels).get("basis") or dict(p.labels).get("baseline")) for p in points}
    assert ("campwatch_cost_per_mtok_usd", "allocation") in names
    assert ("campwatch_cost_per_mtok_usd", "usage") in names
    assert ("campwatch_camp_holds", "openai/gpt-4o") in names
    assert ("campwatch_breakeven_tokens_per_month", "deepseek/deepseek-chat") in names
    holds = {dict(p.labels)["baseline"]: p.value for p in points if p.name == "campwatch_camp_holds"}
    assert set(holds.values()) <= {0.0, 1.0}


def test_no_tokens_means_no_per_mtok_point_rather_than_a_zero(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine, with_engine=False)
    report = build_report(sqlite_engine, SETTINGS, timedelta(hours=2), "h1", now=T0 + 2 * H)
    points = report_points(report)
    assert not [p for p in points if p.name in ("campwatch_cost_per_mtok_usd", "campwatch_api_cost_per_mtok_usd")]
    holds = [p for p in points if p.name == "campwatch_camp_holds"]
    assert [p.value for p in holds] == [0.0]  # GPUs held for nothing: the API is cheaper
    assert any(g.kind == "tokens" for g in report.gaps)


def test_tokens_without_gpu_telemetry_is_a_reported_gap_not_a_free_lunch(sqlite_engine: Engine) -> None:
    write(sqlite_engine, "requests", [request_row(at(60), 1000, 100)])
    report = build_report(sqlite_engine, SETTINGS, timedelta(hours=1), "h1", now=T0 + H)
    assert report.total.allocation.per_mtok is None
    assert report.total.verdicts == ()
    assert [g.kind for g in report.gaps] == ["no_gpu_telemetry"]


def test_an_engine_outage_is_reported_in_the_gaps_and_the_verdict(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine, end_s=3600, with_engine=False)
    up = [engine_row(at(t), prompt=100.0 * t, generation=10.0 * t) for t in range(0, 1801, 10)]
    down = [engine_row(at(t), up=False) for t in range(1810, 3601, 10)]
    write(sqlite_engine, "engine", up + down)
    report = build_report(sqlite_engine, SETTINGS, timedelta(hours=1), "h1", now=T0 + H)
    (gap,) = [g for g in report.gaps if g.kind == "engine"]
    assert gap.seconds == pytest.approx(1800)
    assert any("Data gaps (engine)" in r for r in report.total.verdicts[0].reasons)


def test_json_is_plain_data_with_decimal_strings(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine)
    data = report_to_json(build_report(sqlite_engine, SETTINGS, timedelta(hours=2), "h1", now=T0 + 2 * H))
    text = json.dumps(data)
    back = json.loads(text)
    assert back["total"]["allocation"]["total_usd"] == "9.200000"
    assert back["total"]["verdicts"][0]["baseline"] == "openai/gpt-4o"
    assert back["total"]["verdicts"][0]["state"] in ("holds", "at_risk", "api_cheaper")
    assert {p["period"] for p in back["periods"]} == {"hour", "day", "month", "quarter"}
    assert back["baselines"][0]["source"].startswith("genai-prices")


def test_the_rich_view_shows_costs_baselines_and_the_verdict(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine)
    settings = cost_settings(regulated_data=True)
    report = build_report(sqlite_engine, settings, timedelta(hours=2), "h1", now=T0 + 2 * H)
    console = Console(record=True, width=220)
    render_report(console, report)
    text = console.export_text()
    for expected in ("Self-hosted cost", "openai/gpt-4o", "Camp verdict", "API cheaper", "legal review"):
        assert expected in text


def test_an_empty_store_renders_a_plain_message(sqlite_engine: Engine) -> None:
    report = build_report(sqlite_engine, SETTINGS, timedelta(days=30), None, now=T0)
    console = Console(record=True, width=120)
    render_report(console, report)
    assert "No cost data" in console.export_text()
    assert report_points(report) == []
