"""Prices applied to what was measured, at report time (pure).

Every hour is priced with the settings in force on its day (cost.pricing / cost.pools with their
dated `changes`, overhead_changes, baseline discount_changes, dated price-file entries), read
when the report runs: so a report always reflects the current settings, and a price change
applies from its effective_from on, never to earlier hours."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from agent.config import CostSettings, PricingSettings
from agent.cost.baselines import ApiPrice, Baseline, TokenUsage, price_groups, price_histograms
from agent.cost.measure import GpuHour
from agent.cost.measures import HourMeasure, RequestGroup, TokenSource
from agent.cost.selfhosted import hour_cost
from agent.cost.units import HOUR, HOUR_SECONDS, MONTH_SECONDS, dec, micros
from agent.errors import CostError


@dataclass(frozen=True, slots=True)
class ApiPricing:
    """What one hour's traffic would have cost per baseline, and how it was priced."""

    method: str
    """requests (proxy request groups), histograms or counters (/metrics only, or hours whose
    request groups were not kept), none."""
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    requests: int = 0
    unpriced_requests: int = 0
    prices: Mapping[str, ApiPrice] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    named: Mapping[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    """Per baseline, tokens priced at each named price (time-of-day, dated): ("", n) is the plain one."""

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_json(self) -> str:
        return json.dumps({
            "method": self.method, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens, "requests": self.requests,
            "unpriced_requests": self.unpriced_requests,
            "baselines": {k: {"input": str(p.input_usd), "output": str(p.output_usd), "fees": str(p.fees_usd)}
                          for k, p in sorted(self.prices.items())},
            "errors": dict(sorted(self.errors.items())),
        }, sort_keys=True)


@dataclass(frozen=True, slots=True)
class LedgerRow(GpuHour):
    """One priced hour: the measures of a host's hour and what they cost under the settings in force."""

    host: str
    engine_gap_seconds: float
    gpu_cost_usd: Decimal
    usage_gpu_cost_usd: Decimal
    energy_cost_usd: Decimal
    overhead_usd: Decimal
    prompt_tokens: int
    generation_tokens: int
    cached_tokens: int
    requests: int
    token_source: TokenSource
    api_pricing: ApiPricing
    computed_at: datetime
    unattributed_tokens: int = 0
    """Tokens served straight to the engine, not through the proxy."""

    def values(self) -> dict[str, object]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["api_pricing"] = self.api_pricing.to_json()
        return out

    def measured(self) -> dict[str, object]:
        out = self.values()
        out.pop("computed_at")
        return out


def pricing_for(settings: CostSettings, host: str) -> PricingSettings:
    """The host's pricing with its dated changes (a pool, or cost.pricing)."""
    return settings.pools.get(host, settings.pricing)


def price_api(m: HourMeasure, groups: Sequence[RequestGroup], baselines: Sequence[Baseline]) -> ApiPricing:
    """The API-equivalent cost of an hour's traffic on each baseline, from what was measured."""
    if m.token_source == "none":
        return ApiPricing("none", unpriced_requests=m.proxy_unpriced_requests)
    prices: dict[str, ApiPrice] = {}
    errors: dict[str, str] = {}
    named: dict[str, tuple[tuple[str, int], ...]] = {}
    method = "none"
    tokens = m.prompt_tokens + m.generation_tokens
    if m.token_source == "proxy" and m.request_groups:
        method = "requests"
        for b in baselines:
            try:
                result = price_groups(b, groups)
            except CostError as exc:
                errors[b.id] = str(exc)
                continue
            prices[b.id] = result.price
            named[b.id] = result.tokens_by_price
    elif tokens > 0:
        histogram = m.engine_prompt_histogram if m.token_source == "engine" else None
        totals = TokenUsage(m.prompt_tokens, m.generation_tokens, m.cached_tokens, m.requests)
        at = m.hour + HOUR / 2
        for b in baselines:
            try:
                result_h = price_histograms(b, at, histogram, totals)
            except CostError as exc:
                errors[b.id] = str(exc)
                continue
            prices[b.id] = result_h.price
            method = result_h.method
            named[b.id] = ((b.price_label(b.price_at(at)), tokens),)
    return ApiPricing(method, m.prompt_tokens, m.generation_tokens, m.cached_tokens, m.requests,
                      m.proxy_unpriced_requests, prices, errors, named)


def price_hour(m: HourMeasure, groups: Sequence[RequestGroup], pricing: PricingSettings,
               overhead_usd_per_month: Decimal, baselines: Sequence[Baseline]) -> LedgerRow:
    """One measured hour priced with the pricing in force on its day (`pricing` without changes)."""
    cost = hour_cost(pricing, m, overhead_usd_per_month)
    api = price_api(m, groups, baselines)
    return LedgerRow(
        hour=m.hour, host=m.host, gpus=m.gpus, held_seconds=m.held_seconds,
        allocated_gpu_seconds=m.allocated_gpu_seconds, observed_gpu_seconds=m.observed_gpu_seconds,
        gpu_gap_seconds=m.gpu_gap_seconds, busy_gpu_seconds=m.busy_gpu_seconds,
        engine_gap_seconds=m.engine_gap_seconds, energy_joules=m.energy_joules,
        gpu_cost_usd=cost.gpu_usd, usage_gpu_cost_usd=cost.usage_gpu_usd, energy_cost_usd=cost.energy_usd,
        overhead_usd=cost.overhead_usd, prompt_tokens=m.prompt_tokens, generation_tokens=m.generation_tokens,
        cached_tokens=m.cached_tokens, requests=m.requests, token_source=m.token_source, api_pricing=api,
        simulated=m.simulated, computed_at=m.measured_at, unattributed_tokens=m.unattributed_tokens,
    )


@dataclass(frozen=True, slots=True)
class PriceSegment:
    """A run of hours of one host priced with the same self-hosted inputs."""

    host: str
    start: datetime
    end: datetime
    """Exclusive: the end of the segment's last hour."""
    hours: int
    pricing: PricingSettings
    overhead_usd_per_month: Decimal
    fleet_overhead_usd_per_month: Decimal = Decimal(0)

    @property
    def description(self) -> str:
        p = self.pricing
        if p.kind == "owned":
            gpu = f"owned ${p.purchase_usd:,} over {p.amortization_months} months"
        else:
            gpu = f"${p.gpu_hourly_usd}/GPU-h"
        if p.kind == "owned" or p.energy_billed_separately:
            energy = f"energy ${p.electricity_usd_per_kwh}/kWh x PUE {p.pue}"
        else:
            energy = "energy in the rate"
        fleet = (f", fleet overhead ${self.fleet_overhead_usd_per_month:,}/month shared by GPU-seconds held"
                 if self.fleet_overhead_usd_per_month else "")
        return f"{gpu}, {energy}, overhead ${self.overhead_usd_per_month:,}/month{fleet}"


def price_rows(
    measures: Sequence[HourMeasure], groups: Mapping[tuple[str, datetime], Sequence[RequestGroup]],
    settings: CostSettings, baselines: Sequence[Baseline], fleet: Sequence[HourMeasure] | None = None,
) -> tuple[list[LedgerRow], tuple[PriceSegment, ...]]:
    """Every measured hour priced with the settings in force on its day, and the runs of hours each
    set of self-hosted prices applied to (per host, oldest first)."""
    in_force: dict[tuple[str, date], tuple[PricingSettings, Decimal, Decimal]] = {}
    rows: list[LedgerRow] = []
    segments: list[PriceSegment] = []
    open_: dict[str, list[Any]] = {}
    for m in sorted(measures, key=lambda x: (x.host, x.hour)):
        key = (m.host, m.hour.date())
        terms = in_force.get(key)
        if terms is None:
            terms = in_force[key] = (pricing_for(settings, m.host).on(m.hour.date()),
                                     settings.overhead_on(m.hour.date()), settings.fleet_overhead_on(m.hour.date()))
        rows.append(price_hour(m, groups.get((m.host, m.hour), ()), terms[0], terms[1], baselines))
        current = open_.get(m.host)
        if current is not None and current[3] == terms:
            current[1] = m.hour + HOUR
            current[2] += 1
        else:
            if current is not None:
                segments.append(PriceSegment(m.host, current[0], current[1], current[2], *current[3]))
            open_[m.host] = [m.hour, m.hour + HOUR, 1, terms]
    for host, current in sorted(open_.items()):
        segments.append(PriceSegment(host, current[0], current[1], current[2], *current[3]))
    rows = fleet_overhead(rows, measures if fleet is None else fleet, settings)
    rows.sort(key=lambda r: (r.hour, r.host))
    return rows, tuple(sorted(segments, key=lambda s: (s.host, s.start)))


def fleet_overhead(rows: Sequence[LedgerRow], measures: Sequence[HourMeasure],
                   settings: CostSettings) -> list[LedgerRow]:
    """Add each hour's share of cost.fleet_overhead_usd_per_month to the overhead line of the hosts
    measured in it, by GPU-seconds held (equal shares when none held any), in whole micro-dollars
    that add up exactly. `measures` are every host's (the weights), `rows` may be fewer hosts."""
    if settings.fleet_overhead_usd_per_month <= 0 and not settings.fleet_overhead_changes:
        return list(rows)
    from agent.cost.attribution import split_micros

    weights: dict[datetime, dict[str, Decimal]] = {}
    for m in measures:
        weights.setdefault(m.hour, {})[m.host] = dec(m.allocated_gpu_seconds)
    shares: dict[tuple[datetime, str], Decimal] = {}
    for hour, by_host in weights.items():
        monthly = settings.fleet_overhead_on(hour.date())
        if monthly <= 0:
            continue
        hourly = micros(monthly * dec(HOUR_SECONDS) / dec(MONTH_SECONDS))
        if sum(by_host.values()) <= 0:
            by_host = dict.fromkeys(by_host, Decimal(1))
        for host, part in split_micros(hourly, by_host).items():
            shares[(hour, host)] = part
    return [replace(r, overhead_usd=r.overhead_usd + shares.get((r.hour, r.host), Decimal(0))) for r in rows]
