"""The camp verdict: hand-computed cases and properties (flips exactly at break-even)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from agent.cost.verdict import RunRate, decide

M = Decimal(1_000_000)


def rate(mtok: Decimal | int, fixed: Decimal | int, energy_per_mtok: Decimal | int = 0,
         util: float | None = 0.5) -> RunRate:
    v = Decimal(mtok) * M
    return RunRate(v, Decimal(fixed), Decimal(energy_per_mtok) * Decimal(mtok), util)


def api(mtok: Decimal | int, per_mtok: Decimal | int) -> Decimal:
    return Decimal(mtok) * Decimal(per_mtok)


def test_hand_computed_verdict_that_holds() -> None:
    # $5,000/month fixed, $0.10/Mtok energy, API at $2.60/Mtok: break-even 2,000 Mtok/month.
    v = decide("openai/gpt-4o", rate(4000, 5000, Decimal("0.1")), api(4000, Decimal("2.6")), margin=0.2)
    assert v.state == "holds"
    assert v.breakeven_tokens_per_month == 2000 * M
    assert v.savings_usd_per_month == Decimal("10400") - Decimal("5400")
    assert v.headroom == 0.5
    assert v.utilization_needed == 0.25
    assert v.holds is True
    assert "saves $5,000.00/month" in v.reasons[0]


def test_within_the_margin_above_break_even_is_at_risk() -> None:
    v = decide("b", rate(2200, 5000, Decimal("0.1")), api(2200, Decimal("2.6")), margin=0.2)
    assert v.state == "at_risk"
    assert v.holds is True
    assert "10% above break-even" in v.reasons[0]


def test_below_break_even_the_api_is_cheaper_and_the_reason_says_by_how_much() -> None:
    v = decide("b", rate(1000, 5000, Decimal("0.1")), api(1000, Decimal("2.6")), margin=0.2)
    assert v.state == "api_cheaper"
    assert v.savings_usd_per_month == Decimal("2600") - Decimal("5100")
    assert v.holds is False
    assert v.reasons[0].startswith("b would have cost $2,500.00/month less")


def test_an_api_cheaper_than_the_energy_never_breaks_even() -> None:
    v = decide("b", rate(1000, 100, Decimal("0.5")), api(1000, Decimal("0.4")), margin=0.2)
    assert v.state == "api_cheaper"
    assert v.breakeven_tokens_per_month is None
    assert not v.breakeven_reachable


def test_needing_more_than_full_utilization_is_called_out() -> None:
    v = decide("b", rate(100, 5000, util=0.6), api(100, 10), margin=0.2)
    assert v.utilization_needed is not None and v.utilization_needed > 1
    assert any("cannot beat b" in r for r in v.reasons)


def test_regulated_data_adds_the_legal_review_sentence_whatever_the_price() -> None:
    for monthly in (api(4000, 10), api(4000, Decimal("0.01"))):
        v = decide("b", rate(4000, 5000), monthly, margin=0.2, regulated=True)
        assert any("needs legal review whatever the price" in r for r in v.reasons)


def test_no_tokens_with_gpus_held_is_a_loss_not_an_unknown() -> None:
    v = decide("b", rate(0, 700), None, margin=0.2)
    assert v.state == "api_cheaper"
    assert v.savings_usd_per_month == -700


money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100_000), places=2)
per_mtok = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(50), places=3)


@given(fixed=money, marginal=per_mtok, extra=per_mtok, margin=st.floats(0, 0.9))
def test_the_verdict_flips_exactly_at_break_even(fixed: Decimal, marginal: Decimal, extra: Decimal,
                                                 margin: float) -> None:
    price = marginal + extra  # the API costs more per token than the energy
    breakeven_mtok = fixed / extra
    probe = decide("b", rate(breakeven_mtok, fixed, marginal), api(breakeven_mtok, price), margin)
    assert probe.breakeven_tokens_per_month is not None
    assert abs(probe.breakeven_tokens_per_month - breakeven_mtok * M) <= Decimal("1e-6") * breakeven_mtok * M
    step = breakeven_mtok * Decimal("1e-9")
    below = decide("b", rate(breakeven_mtok - step, fixed, marginal), api(breakeven_mtok - step, price), margin)
    above = decide("b", rate(breakeven_mtok + step, fixed, marginal), api(breakeven_mtok + step, price), margin)
    assert below.state == "api_cheaper"
    assert above.state in ("holds", "at_risk")
    assert (above.savings_usd_per_month or 0) > 0 > (below.savings_usd_per_month or 0)


@given(fixed=money, marginal=per_mtok, price=per_mtok, mtok=st.integers(1, 10_000), more=st.integers(0, 10_000))
def test_savings_never_fall_as_volume_grows(fixed: Decimal, marginal: Decimal, price: Decimal, mtok: int,
                                           more: int) -> None:
    small = decide("b", rate(mtok, fixed, marginal), api(mtok, price), 0.2)
    large = decide("b", rate(mtok + more, fixed, marginal), api(mtok + more, price), 0.2)
    assert small.savings_usd_per_month is not None and large.savings_usd_per_month is not None
    if price >= marginal:
        assert large.savings_usd_per_month >= small.savings_usd_per_month
    order = {"api_cheaper": 0, "at_risk": 1, "holds": 2}
    if price > marginal:
        assert order[large.state] >= order[small.state]
