"""Showback: cost split by team, model, caller and route, idle GPU time apart, engine-only tokens
unattributed, team budgets with their run rate (issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from agent.cost.attribution import IDLE, UNASSIGNED, UNATTRIBUTED, attribute, split_micros, team_budgets
from agent.cost.measures import RequestGroup
from agent.cost.pricing import ApiPricing, LedgerRow
from agent.cost.report import build_report, report_points
from tests.cost.cost_helpers import T0, at, cost_settings, request_row, steady_host, write

TEAMS = {"hash-a": "search", "hash-b": "support", "hash-c": "research"}


def row(hour: datetime, gpu: str, usage: str, energy: str = "0", overhead: str = "0", prompt: int = 0,
        generation: int = 0, source: str = "proxy", unattributed: int = 0) -> LedgerRow:
    return LedgerRow(hour=hour, host="h1", gpus=1, held_seconds=3600, allocated_gpu_seconds=3600,
                     observed_gpu_seconds=3600, gpu_gap_seconds=0, busy_gpu_seconds=1800, engine_gap_seconds=0,
                     energy_joules=0, gpu_cost_usd=Decimal(gpu), usage_gpu_cost_usd=Decimal(usage),
                     energy_cost_usd=Decimal(energy), overhead_usd=Decimal(overhead), prompt_tokens=prompt,
                     generation_tokens=generation, cached_tokens=0, requests=1,
                     token_source=source,  # type: ignore[arg-type]
                     api_pricing=ApiPricing("requests"), simulated=False, computed_at=hour,
                     unattributed_tokens=unattributed)


def group(hour: datetime, caller: str, prompt: int, generation: int, team: str = "", model: str = "m") -> RequestGroup:
    return RequestGroup(hour, "h1", model, "/v1/chat/completions", caller, team, 0, 256, 1, prompt, generation, 0)


def test_an_hour_split_by_team_with_idle_time_apart_by_hand() -> None:
    # $4 of GPU held, $1 of it busy, $0.50 energy, $0.50 overhead: $5 in all.
    r = row(T0, "4", "1", "0.5", "0.5", prompt=3000, generation=500)
    groups = {("h1", T0): [group(T0, "hash-a", 1000, 250), group(T0, "hash-b", 2000, 250, team="")]}
    a = attribute([r], groups, "team", TEAMS, Decimal(4))
    shares = {s.key: s for s in a.shares}
    # Weights: search 1000 + 4x250 = 2000, support 2000 + 4x250 = 3000 (of 5000).
    assert shares["search"].allocation_usd == Decimal("2") and shares["support"].allocation_usd == Decimal("3")
    # Usage basis: the $3 of idle GPU is its own line; the $2 of busy GPU, energy and overhead is shared.
    assert shares[IDLE].usage_usd == Decimal("3")
    assert (shares["search"].usage_usd, shares["support"].usage_usd) == (Decimal("0.8"), Decimal("1.2"))
    assert a.total_usd == Decimal(5)


def test_a_team_header_wins_over_the_caller_mapping_and_unknown_callers_have_no_team() -> None:
    r = row(T0, "1", "1", prompt=300, generation=0)
    groups = {("h1", T0): [group(T0, "hash-a", 100, 0, team="ads"), group(T0, "hash-z", 200, 0)]}
    shares = {s.key: s.allocation_usd for s in attribute([r], groups, "team", TEAMS, Decimal(4)).shares}
    assert shares == {"ads": Decimal("0.333333"), UNASSIGNED: Decimal("0.666667")}


def test_tokens_served_outside_the_proxy_are_unattributed_and_an_hour_without_tokens_is_idle() -> None:
    served = row(T0, "2", "2", prompt=4000, generation=0, source="engine", unattributed=3000)
    empty = row(T0 + timedelta(hours=1), "2", "0")
    groups = {("h1", T0): [group(T0, "hash-a", 1000, 0)]}
    shares = {s.key: s for s in attribute([served, empty], groups, "team", TEAMS, Decimal(4)).shares}
    assert shares["search"].allocation_usd == Decimal("0.5")
    assert shares[UNATTRIBUTED].allocation_usd == Decimal("1.5") and shares[UNATTRIBUTED].tokens == 3000
    assert shares[IDLE].allocation_usd == Decimal("2")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(sorted(TEAMS)), st.integers(0, 50_000),
                          st.integers(0, 5_000)), min_size=1, max_size=40),
       st.lists(st.integers(1, 10**7), min_size=6, max_size=6), st.integers(0, 100))
def test_three_team_shares_add_up_exactly_to_the_total(traffic: list[tuple[int, str, int, int]],
                                                        gpu_micros: list[int], busy_pct: int) -> None:
    rows, groups = [], {}
    for h in range(6):
        hour = T0 + timedelta(hours=h)
        mine = [group(hour, caller, p, g) for hh, caller, p, g in traffic if hh == h]
        groups[("h1", hour)] = mine
        gpu = Decimal(gpu_micros[h]) / 10**6
        usage = (gpu * busy_pct / 100).quantize(Decimal("0.000001"))
        rows.append(row(hour, str(gpu), str(usage), "0.123457", "0.000001",
                        prompt=sum(x.input_tokens for x in mine), generation=sum(x.output_tokens for x in mine)))
    total = sum((r.gpu_cost_usd + r.energy_cost_usd + r.overhead_usd for r in rows), Decimal(0))
    a = attribute(rows, groups, "team", TEAMS, Decimal(4))
    assert sum((s.allocation_usd for s in a.shares), Decimal(0)) == total
    assert sum((s.usage_usd for s in a.shares), Decimal(0)) == total
    assert {s.key for s in a.shares} <= {"search", "support", "research", IDLE}


def test_split_micros_is_exact_and_deterministic() -> None:
    parts = split_micros(Decimal("1.000000"), {"a": Decimal(1), "b": Decimal(1), "c": Decimal(1)})
    assert parts == {"a": Decimal("0.333334"), "b": Decimal("0.333333"), "c": Decimal("0.333333")}


def test_a_team_budget_run_rate_projects_the_month() -> None:
    r = row(datetime(2026, 11, 1, tzinfo=UTC), "10", "10", prompt=100)
    a = attribute([r], {("h1", r.hour): [group(r.hour, "hash-a", 100, 0)]}, "team", TEAMS, Decimal(4))
    (search,) = team_budgets(a, {"search": Decimal(100)}, elapsed_seconds=3 * 86400, month_seconds=30 * 86400)
    assert (search.month_to_date_usd, search.run_rate_usd, search.over_budget) == (Decimal(10), Decimal(100), False)


def test_cost_by_team_reaches_the_report_json_and_the_exported_series(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine, with_engine=False)
    rows = [request_row(at(60 * i), 1000, 250, n=i) | {"caller": "hash-a" if i % 2 else "hash-b"}
            for i in range(100)]
    write(sqlite_engine, "requests", rows)
    settings_ = cost_settings(teams=TEAMS, team_budgets_usd_per_month={"search": Decimal(50)})
    report = build_report(sqlite_engine, settings_, timedelta(hours=2), "h1", now=T0 + timedelta(hours=2))
    (by_team,) = [a for a in report.attribution if a.by == "team"]
    assert sum((s.allocation_usd for s in by_team.shares), Decimal(0)) == report.total.allocation.total_usd
    points = {(p.name, dict(p.labels).get("team"), dict(p.labels).get("basis")): p.value
              for p in report_points(report)}
    assert points[("campwatch_cost_usd_total", "search", "allocation")] + points[
        ("campwatch_cost_usd_total", "support", "allocation")] == float(report.total.allocation.total_usd)
    assert points[("campwatch_team_budget_usd", "search", None)] == 50.0
