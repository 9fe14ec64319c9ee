"""What self-hosting cost in one hour, by pricing model (pure).

- hourly (cloud on-demand, reserved, spot): rate x GPU-hours held; energy is in the rate unless
  `energy_billed_separately` (colocation).
- owned: the purchase price spread evenly over the amortization months (a month is 730 h),
  charged for the wall time the host is held; energy always paid.
Energy cost = measured GPU joules / 3.6e6 x $/kWh x PUE. The monthly overhead (MLOps time) is
charged per held wall second. The usage basis charges only the busy share of the GPU line."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from agent.config import PricingSettings
from agent.cost.measure import GpuHour
from agent.cost.units import HOUR_SECONDS, JOULES_PER_KWH, MONTH_SECONDS, dec, micros


@dataclass(frozen=True, slots=True)
class HourCost:
    gpu_usd: Decimal
    """Allocation basis: every GPU-second held, idle included."""
    usage_gpu_usd: Decimal
    """Usage basis: the busy share of gpu_usd (busy GPU-seconds / allocated GPU-seconds)."""
    energy_usd: Decimal
    overhead_usd: Decimal


def pays_energy(pricing: PricingSettings) -> bool:
    return pricing.kind == "owned" or pricing.energy_billed_separately


def gpu_cost_usd(pricing: PricingSettings, allocated_gpu_seconds: float, held_seconds: float) -> Decimal:
    if pricing.kind == "owned":
        per_second = pricing.purchase_usd / (pricing.amortization_months * dec(MONTH_SECONDS))
        return per_second * dec(held_seconds)
    return pricing.gpu_hourly_usd * dec(allocated_gpu_seconds) / dec(HOUR_SECONDS)


def energy_cost_usd(pricing: PricingSettings, joules: float) -> Decimal:
    if not pays_energy(pricing):
        return Decimal(0)
    return dec(joules) / JOULES_PER_KWH * pricing.electricity_usd_per_kwh * pricing.pue


def overhead_cost_usd(overhead_usd_per_month: Decimal, held_seconds: float) -> Decimal:
    return overhead_usd_per_month * dec(held_seconds) / dec(MONTH_SECONDS)


def hour_cost(pricing: PricingSettings, gpu: GpuHour, overhead_usd_per_month: Decimal) -> HourCost:
    """One hour's cost lines, rounded to the ledger's 6 decimals."""
    gpu_usd = gpu_cost_usd(pricing, gpu.allocated_gpu_seconds, gpu.held_seconds)
    busy_share = (dec(gpu.busy_gpu_seconds) / dec(gpu.allocated_gpu_seconds)
                  if gpu.allocated_gpu_seconds > 0 else Decimal(0))
    return HourCost(
        gpu_usd=micros(gpu_usd),
        usage_gpu_usd=micros(gpu_usd * busy_share),
        energy_usd=micros(energy_cost_usd(pricing, gpu.energy_joules)),
        overhead_usd=micros(overhead_cost_usd(overhead_usd_per_month, gpu.held_seconds)),
    )
