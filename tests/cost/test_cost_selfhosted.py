"""Self-hosted cost per pricing model, hand-computed; monotonicity as properties."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from agent.config import PricingSettings
from agent.cost.measure import GpuHour
from agent.cost.selfhosted import hour_cost
from tests.cost.cost_helpers import T0

H = timedelta(hours=1)


def gpu_hour(gpus: int = 2, held: float = 3600.0, busy: float = 1800.0, joules: float = 3_600_000.0) -> GpuHour:
    return GpuHour(T0, gpus, held, gpus * held, gpus * held, 0.0, busy, joules, False)


def test_hourly_rate_bills_every_gpu_hour_held_and_usage_only_the_busy_share() -> None:
    cost = hour_cost(PricingSettings(kind="hourly", gpu_hourly_usd=Decimal("2.50")), gpu_hour(), Decimal(0))
    assert cost.gpu_usd == Decimal("5.000000")  # 2 GPU-hours x $2.50
    assert cost.usage_gpu_usd == Decimal("1.250000")  # 1800 of 7200 GPU-seconds busy
    assert cost.energy_usd == 0  # in the rate


def test_hourly_rate_with_energy_billed_separately_pays_measured_kwh_times_pue() -> None:
    pricing = PricingSettings(kind="hourly", gpu_hourly_usd=Decimal("2"), energy_billed_separately=True,
                              electricity_usd_per_kwh=Decimal("0.20"), pue=Decimal("1.5"))
    cost = hour_cost(pricing, gpu_hour(joules=7_200_000.0), Decimal(0))  # 2 kWh
    assert cost.energy_usd == Decimal("0.600000")


def test_owned_hardware_amortizes_the_purchase_over_730_hour_months_and_pays_energy() -> None:
    pricing = PricingSettings(kind="owned", purchase_usd=Decimal("262800"), amortization_months=36,
                              electricity_usd_per_kwh=Decimal("0.10"), pue=Decimal("1.2"))
    cost = hour_cost(pricing, gpu_hour(gpus=8), Decimal(0))
    assert cost.gpu_usd == Decimal("10.000000")  # 262,800 / (36 x 730) per host-hour
    assert cost.usage_gpu_usd == Decimal("0.625000")  # 1800 busy of 8 x 3600 GPU-seconds
    assert cost.energy_usd == Decimal("0.120000")  # 1 kWh x $0.10 x 1.2


def test_overhead_is_charged_per_held_wall_second_of_a_730_hour_month() -> None:
    cost = hour_cost(PricingSettings(), gpu_hour(held=1800.0), Decimal("7300"))
    assert cost.overhead_usd == Decimal("5.000000")  # 7300 / 730 / 2


prices = st.decimals(min_value=0, max_value=100, places=2)
seconds = st.floats(min_value=0, max_value=3600, allow_nan=False)


@given(low=prices, extra=prices, held=seconds, busy_share=st.floats(0, 1))
def test_cost_is_monotone_in_the_hourly_price(low: Decimal, extra: Decimal, held: float, busy_share: float) -> None:
    hour = gpu_hour(held=held, busy=2 * held * busy_share)
    cheap = hour_cost(PricingSettings(gpu_hourly_usd=low), hour, Decimal(0))
    dear = hour_cost(PricingSettings(gpu_hourly_usd=low + extra), hour, Decimal(0))
    assert dear.gpu_usd >= cheap.gpu_usd
    assert dear.usage_gpu_usd >= cheap.usage_gpu_usd


@given(price=prices, held=seconds, more=seconds, kind=st.sampled_from(["hourly", "owned"]))
def test_cost_is_monotone_in_gpu_hours_held(price: Decimal, held: float, more: float, kind: str) -> None:
    pricing = PricingSettings.model_validate({"kind": kind, "gpu_hourly_usd": price, "purchase_usd": price * 1000})
    short = hour_cost(pricing, gpu_hour(held=held, busy=0.0), Decimal(100))
    long = hour_cost(pricing, gpu_hour(held=held + more, busy=0.0), Decimal(100))
    assert long.gpu_usd >= short.gpu_usd
    assert long.overhead_usd >= short.overhead_usd
