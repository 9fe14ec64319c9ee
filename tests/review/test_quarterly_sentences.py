"""The quarterly review's sentences and its variance against plan are computed from the figures
(pure functions), checked here on hand-computed cases."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from agent.cost.attribution import IDLE, UNASSIGNED, UNATTRIBUTED
from agent.review import quarterly
from agent.review.quarterly import MonthAgainstPlan


def example_variance() -> quarterly.PlanVariance:
    # plan: 1,000 Mtok/month for $2,000 at $2.50 per GPU-hour (so 800 GPU-hours, 0.8 per Mtok);
    # actual: 1,200 Mtok/month for $2,200 on 1,000 GPU-hours ($2.20 each, 0.833 per Mtok)
    return quarterly.plan_variance("2026-Q4", plan_tokens_per_month=1_000_000_000, plan_cost_per_month_usd=2000,
                                   plan_usd_per_gpu_hour=Decimal("2.50"), actual_tokens_per_month=1_200_000_000,
                                   actual_cost_per_month_usd=Decimal("2200"), actual_gpu_hours_per_month=1000)


def test_the_variance_splits_into_volume_price_and_utilization_that_add_up_exactly() -> None:
    v = example_variance()
    assert v.volume_usd == 400  # 200 Mtok more at the plan's $2 per Mtok
    assert v.price_usd == -300  # $0.30 less per GPU-hour on 1,000 GPU-hours
    assert v.utilization_usd == 100  # 1,000 GPU-hours instead of 960 (0.8 per Mtok x 1,200) at $2.50
    assert v.volume_usd + v.price_usd + v.utilization_usd == v.total_usd == 200
    assert [name for name, _ in v.effects()] == ["volume", "price", "utilization"]


def test_the_variance_adds_up_exactly_on_awkward_numbers() -> None:
    v = quarterly.plan_variance("2026-Q3", plan_tokens_per_month=3_333_333_333, plan_cost_per_month_usd=Decimal("7.1"),
                                plan_usd_per_gpu_hour=Decimal("2.37"), actual_tokens_per_month=Decimal("1.234567e9"),
                                actual_cost_per_month_usd=Decimal("9876.54321"), actual_gpu_hours_per_month=0.7)
    assert isinstance(v.total_usd, Fraction)
    assert v.volume_usd + v.price_usd + v.utilization_usd == v.total_usd


def test_the_variance_sentence_names_each_driver_largest_first() -> None:
    assert quarterly.variance_sentence(example_variance()) == (
        "2026-Q4 runs at $2,200.00/month against the plan's $2,000.00: $200.00/month over plan. Drivers, largest "
        "first: volume +$400.00 (120% of the planned 1,000.0 Mtok/month); price -$300.00 ($2.20 per GPU-hour held "
        "against the plan's $2.50); utilization +$100.00 (0.833 GPU-hours per Mtok against the plan's 0.800). "
        "The largest driver is volume.")


def test_a_variance_without_volume_or_price_is_a_value_error_naming_the_input() -> None:
    with pytest.raises(ValueError, match="plan_tokens_per_month: expected a positive number, got 0"):
        quarterly.plan_variance("2026-Q4", plan_tokens_per_month=0, plan_cost_per_month_usd=1,
                                plan_usd_per_gpu_hour=1, actual_tokens_per_month=1, actual_cost_per_month_usd=1,
                                actual_gpu_hours_per_month=1)
    with pytest.raises(ValueError, match="actual_gpu_hours_per_month"):
        quarterly.plan_variance("2026-Q4", plan_tokens_per_month=1, plan_cost_per_month_usd=1,
                                plan_usd_per_gpu_hour=1, actual_tokens_per_month=1, actual_cost_per_month_usd=1,
                                actual_gpu_hours_per_month=0)


def test_a_month_is_compared_with_the_plan_at_its_730_hour_pace() -> None:
    full = MonthAgainstPlan("2026-10", 744, 744, 1_200_000_000, Decimal("1800"), "2026-Q4", 1_000_000_000,
                            Decimal("2000"))
    # 1,200 Mtok x 730 / 744 = 1,177.4 Mtok/month (118 %); $1,800 x 730 / 744 = $1,766.13 (88 %)
    assert full.tokens_per_month == pytest.approx(1_177_419_354.8, abs=1)
    assert quarterly.month_sentence(full) == (
        "2026-10 (full month): 1,200.0 Mtok served for $1,800.00; at 730 hours a month that is 1,177.4 Mtok/month "
        "and $1,766.13/month (118% of the plan's 1,000.0; 88% of the plan's $2,000.00).")
    partial = MonthAgainstPlan("2026-12", 24, 744, 40_000_000, Decimal("60"), "2026-Q4", 1_000_000_000,
                               Decimal("1500"))
    # 40 Mtok x 730 / 24 = 1,216.7 Mtok/month; $60 x 730 / 24 = $1,825 (122 % of $1,500: over plan)
    assert quarterly.month_sentence(partial) == (
        "2026-12 (partial: 24 of 744 hours with data): 40.0 Mtok served for $60.00; at 730 hours a month that is "
        "1,216.7 Mtok/month and $1,825.00/month (122% of the plan's 1,000.0; 122% of the plan's $1,500.00) "
        "(over plan).")
    unplanned = MonthAgainstPlan("2027-01", 744, 744, 0, Decimal("10"), "2027-Q1", None, None)
    assert quarterly.month_sentence(unplanned).endswith("$9.81/month (no plan for 2027-Q1).")


def test_per_mtok_compares_both_bases_with_the_baseline() -> None:
    assert quarterly.per_mtok_sentence("openai/gpt-4o", Decimal("4.375"), Decimal("0.50"), Decimal("0.25")) == (
        "Self-hosted $0.50/Mtok on the allocation basis (every GPU-hour held) and $0.25/Mtok on the usage basis "
        "(busy GPU time only), against $4.38/Mtok on openai/gpt-4o: self-hosting is 8.8x cheaper on allocation, "
        "17.5x cheaper on usage.")
    # $0.28/Mtok: allocation 0.50 / 0.28 = 1.8x dearer, usage 0.28 / 0.25 = 1.1x cheaper
    assert quarterly.per_mtok_sentence("deepseek/deepseek-chat", Decimal("0.28"), Decimal("0.50"),
                                       Decimal("0.25")).endswith("1.8x dearer on allocation, 1.1x cheaper on usage.")
    assert quarterly.per_mtok_sentence("x", None, None, None) == (
        "x: no self-hosted $/Mtok (no GPU time or no tokens measured).")


def test_the_verdict_says_where_the_quarter_stands_against_break_even() -> None:
    assert quarterly.verdict_sentence("openai/gpt-4o", "holds", Decimal("3000"), Decimal("400e6"), True,
                                      Decimal("1e9")) == (
        "openai/gpt-4o: self-hosting holds, saving $3,000.00/month. Break-even is 400.0 Mtok/month; the quarter "
        "runs at 1,000.0 Mtok/month, 2.50x break-even: traffic can fall 60% before the API is cheaper.")
    assert quarterly.verdict_sentence("b", "api_cheaper", Decimal("-1200"), Decimal("2.5e9"), True,
                                      Decimal("1e9")) == (
        "b: the API is cheaper, costing $1,200.00/month more than the API. Break-even is 2,500.0 Mtok/month; the "
        "quarter runs at 1,000.0 Mtok/month, 40% of break-even: it must grow 2.50x to break even.")
    assert quarterly.verdict_sentence("b", "api_cheaper", Decimal("-5"), None, False, Decimal("1e6")) == (
        "b: the API is cheaper, costing $5.00/month more than the API. No volume breaks even at these prices (the "
        "API costs less per token than the energy alone); the quarter runs at 1.0 Mtok/month.")
    assert quarterly.verdict_sentence("b", "unknown", None, None, False, Decimal(1),
                                      ("insufficient data: 2 hours.",)) == "b: no verdict (insufficient data: 2 hours)."


def test_idle_and_energy_sentences_come_from_the_figures() -> None:
    assert quarterly.idle_sentence(Decimal(1000), Decimal(600), Decimal(1100), 0.6) == (
        "Idle GPU time cost $400.00 (36% of the $1,100.00 bill): the GPUs were busy 60% of the GPU time observed.")
    # 3.6e9 J = 1,000 kWh; over 1e9 tokens = 3,600 J per 1k tokens
    assert quarterly.energy_sentence(3.6e9, 1_000_000_000, Decimal(0)) == (
        "The GPUs drew 1,000.0 kWh, 3,600.0 J per 1k tokens; energy is in the hourly GPU rate, not a separate line.")
    assert quarterly.energy_sentence(3.6e9, 0, Decimal(150)) == (
        "The GPUs drew 1,000.0 kWh; energy cost $150.00, paid per kWh.")
    assert quarterly.energy_sentence(0.0, 5, Decimal(0)) == "No GPU energy was measured in this quarter."


def test_cost_by_team_lists_the_largest_and_says_when_nothing_is_attributed() -> None:
    shares = [("search", Decimal(600)), ("chat", Decimal(290)), ("ads", Decimal(50)), ("misc", Decimal(30)),
              (IDLE, Decimal(20)), (UNATTRIBUTED, Decimal(10))]
    assert quarterly.attribution_sentence("team", shares, Decimal(1000)) == (
        "Cost by team: search $600.00 (60%), chat $290.00 (29%), ads $50.00 (5%), 1 more $30.00 (3%), "
        "(idle GPU) $20.00 (2%), (unattributed) $10.00 (1%).")
    assert quarterly.attribution_sentence("team", [(UNASSIGNED, Decimal(1)), (IDLE, Decimal(4)),
                                                   (UNATTRIBUTED, Decimal(95))], Decimal(100)) == (
        "No cost by team for this quarter: no proxy request records name a team for its tokens (route traffic "
        "through the capture proxy with a team header or cost.teams) ((no team) $1.00 (1%), (idle GPU) $4.00 (4%), "
        "(unattributed) $95.00 (95%)).")
    assert quarterly.attribution_sentence("model", [], Decimal(0)) == (
        "No cost by model for this quarter: no proxy request records name a model for its tokens (route traffic "
        "through the capture proxy).")


def test_a_quarter_without_data_says_so_in_every_section(tmp_path: Path) -> None:
    from agent.config import CostSettings
    from agent.store.db import open_engine
    from agent.store.migrate import upgrade

    engine = open_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    upgrade(engine)
    report = quarterly.quarter_report(engine, CostSettings(), "2026Q3", now=datetime(2026, 9, 1, tzinfo=UTC))
    engine.dispose()
    said = quarterly.sentences(report)
    assert said["months"] == ["No month of 2026-Q3 has cost data: nothing was measured yet."]
    assert said["verdicts"] == ["No verdict for 2026-Q3: it needs GPU time measured (GPU telemetry) and a priced "
                                "API baseline."]
    assert said["drivers"] == ["No difference from plan to explain: no planned quarter has data (add [[cost.plan]] "
                               "or --plan)."]
    assert said["energy"] == ["No GPU energy was measured in this quarter."]
    assert all(s.startswith("No cost by") for s in said["attribution"])
    assert quarterly.variances(report) == []
