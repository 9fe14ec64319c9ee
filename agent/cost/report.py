"""The cost report: realized cost on both bases, API-equivalent cost per baseline, the verdict,
per host and for the fleet, from the hourly ledger (summarize is pure; build_report reads the store)."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from agent.config import CostSettings, PlanQuarter
from agent.cost.attribution import DIMENSIONS, Attribution, TeamBudget, attribute, team_budgets
from agent.cost.baselines import ApiPrice, Baseline, EffectiveRates, effective_rates, resolve_baselines
from agent.cost.capacity import Capacity, LoadWindow, Slo, estimate_capacity, fleet_capacity, load_windows
from agent.cost.forecast import Flip, MonthVolume, fit_trend, forecast_flip
from agent.cost.hybrid import CapacityBasis, HybridCosts, HybridResult, hybrid_optimum
from agent.cost.ledger import measures_for_report, read_measures, refresh_ledger
from agent.cost.measures import RequestGroup
from agent.cost.pricing import LedgerRow, PriceSegment, price_rows
from agent.cost.units import MONTH_SECONDS, MTOK, dec, per_mtok
from agent.cost.verdict import RunRate, Verdict, decide
from agent.errors import CostError
from agent.periods import quarter_of
from agent.samples import Point, labels
from agent.utc import as_utc

Basis = Literal["allocation", "usage"]
PeriodKind = Literal["hour", "day", "month", "quarter"]
FLEET = "fleet"
GAP_MIN_SECONDS = 1.0
"""Gaps shorter than this are float residue of interval arithmetic, not missing data."""


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over ledger rows."""

    hours: int = 0
    held_seconds: float = 0.0
    allocated_gpu_seconds: float = 0.0
    observed_gpu_seconds: float = 0.0
    gpu_gap_seconds: float = 0.0
    busy_gpu_seconds: float = 0.0
    engine_gap_seconds: float = 0.0
    energy_joules: float = 0.0
    gpu_usd: Decimal = Decimal(0)
    usage_gpu_usd: Decimal = Decimal(0)
    energy_usd: Decimal = Decimal(0)
    overhead_usd: Decimal = Decimal(0)
    prompt_tokens: int = 0
    generation_tokens: int = 0
    cached_tokens: int = 0
    requests: int = 0
    hours_by_source: tuple[tuple[str, int], ...] = ()
    held_hours_without_tokens: int = 0
    max_gpus: int = 0
    simulated: bool = False
    unattributed_tokens: int = 0
    """Tokens served straight to the engine, not through the proxy (no team, caller or route)."""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.generation_tokens

    @property
    def joules_per_1k_tokens(self) -> float | None:
        """GPU energy per thousand tokens served, or None without tokens or energy readings."""
        return self.energy_joules * 1000 / self.tokens if self.tokens > 0 and self.energy_joules > 0 else None

    @property
    def utilization(self) -> float | None:
        """Busy share of the GPU time observed, or None without telemetry."""
        return self.busy_gpu_seconds / self.observed_gpu_seconds if self.observed_gpu_seconds > 0 else None


def totals_of(rows: Iterable[LedgerRow]) -> Totals:
    rows = list(rows)
    sources = Counter(r.token_source for r in rows)
    return Totals(
        hours=len(rows),
        held_seconds=sum(r.held_seconds for r in rows),
        allocated_gpu_seconds=sum(r.allocated_gpu_seconds for r in rows),
        observed_gpu_seconds=sum(r.observed_gpu_seconds for r in rows),
        gpu_gap_seconds=sum(r.gpu_gap_seconds for r in rows),
        busy_gpu_seconds=sum(r.busy_gpu_seconds for r in rows),
        engine_gap_seconds=sum(r.engine_gap_seconds for r in rows),
        energy_joules=sum(r.energy_joules for r in rows),
        gpu_usd=sum((r.gpu_cost_usd for r in rows), Decimal(0)),
        usage_gpu_usd=sum((r.usage_gpu_cost_usd for r in rows), Decimal(0)),
        energy_usd=sum((r.energy_cost_usd for r in rows), Decimal(0)),
        overhead_usd=sum((r.overhead_usd for r in rows), Decimal(0)),
        prompt_tokens=sum(r.prompt_tokens for r in rows),
        generation_tokens=sum(r.generation_tokens for r in rows),
        cached_tokens=sum(r.cached_tokens for r in rows),
        requests=sum(r.requests for r in rows),
        hours_by_source=tuple(sorted(sources.items())),
        held_hours_without_tokens=sum(1 for r in rows if r.held_seconds > 0 and r.token_source == "none"),
        max_gpus=max((r.gpus for r in rows), default=0),
        simulated=any(r.simulated for r in rows),
        unattributed_tokens=sum(r.unattributed_tokens for r in rows),
    )


@dataclass(frozen=True, slots=True)
class BasisCost:
    """Self-hosted cost on one basis. The bases differ only in the GPU line."""

    basis: Basis
    gpu_usd: Decimal
    energy_usd: Decimal
    overhead_usd: Decimal
    per_mtok: Decimal | None
    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    energy_per_mtok: Decimal | None = None
    """The energy line alone per million tokens (0 when energy is in the hourly rate)."""

    @property
    def total_usd(self) -> Decimal:
        return self.gpu_usd + self.energy_usd + self.overhead_usd


def split_io(
    total: Decimal, prompt: int, generation: int, output_weight: Decimal
) -> tuple[Decimal | None, Decimal | None]:
    """Input and output $/Mtok: the cost is shared in proportion to prompt + w x generation tokens,
    so an output token costs w times an input token."""
    weighted = dec(prompt) + output_weight * dec(generation)
    if weighted <= 0:
        return None, None
    unit = total / weighted  # USD per input-token equivalent
    return (per_mtok(unit * prompt, prompt) if prompt else None,
            per_mtok(unit * output_weight * generation, generation) if generation else None)


def basis_cost(t: Totals, basis: Basis, output_weight: Decimal) -> BasisCost:
    gpu = t.gpu_usd if basis == "allocation" else t.usage_gpu_usd
    total = gpu + t.energy_usd + t.overhead_usd
    known = t.held_seconds > 0 or total > 0  # without GPU telemetry the cost is unknown, not zero
    inp, out = split_io(total, t.prompt_tokens, t.generation_tokens, output_weight) if known else (None, None)
    return BasisCost(basis, gpu, t.energy_usd, t.overhead_usd,
                     per_mtok(total, t.tokens) if known else None, inp, out,
                     per_mtok(t.energy_usd, t.tokens) if known else None)


@dataclass(frozen=True, slots=True)
class ApiEquivalent:
    """What the window's traffic would have cost on one baseline."""

    baseline: str
    method: str
    """requests, histograms, counters, a mix like "requests+histograms", or none."""
    priced_tokens: int
    priced_requests: int
    priced: ApiPrice
    """The API cost of the traffic that could be priced."""
    per_mtok: Decimal | None
    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    cost_usd: Decimal | None
    """The whole window's tokens at per_mtok (equals priced.total_usd at full coverage)."""
    coverage: float
    errors: tuple[str, ...]
    tokens_by_price: tuple[tuple[str, int], ...] = ()
    """Tokens priced at each named price of the baseline ("" the plain price, else e.g.
    "off-peak 16:30-00:30 UTC"): time-of-day prices make the result depend on when traffic ran."""

    @property
    def price_shares(self) -> tuple[tuple[str, float], ...]:
        """(price name, share of the priced tokens), "standard" for the plain price."""
        total = sum(n for _, n in self.tokens_by_price)
        if total <= 0:
            return ()
        return tuple((name or "standard", n / total) for name, n in self.tokens_by_price)


def api_equivalent(baseline: str, rows: Sequence[LedgerRow], tokens: int) -> ApiEquivalent:
    priced = ApiPrice()
    priced_in = priced_out = requests = 0
    methods: set[str] = set()
    errors: list[str] = []
    named: Counter[str] = Counter()
    for r in rows:
        api = r.api_pricing
        price = api.prices.get(baseline)
        if price is not None:
            priced += price
            priced_in += api.input_tokens
            priced_out += api.output_tokens
            requests += api.requests
            methods.add(api.method)
            for name, n in api.named.get(baseline, ()):
                named[name] += n
        elif baseline in api.errors:
            errors.append(f"{r.hour:%Y-%m-%d %H:00} {r.host}: {api.errors[baseline]}")
    priced_tokens = priced_in + priced_out
    rate = per_mtok(priced.total_usd, priced_tokens)
    return ApiEquivalent(
        baseline=baseline,
        method="+".join(sorted(methods)) or "none",
        priced_tokens=priced_tokens,
        priced_requests=requests,
        priced=priced,
        per_mtok=rate,
        input_per_mtok=per_mtok(priced.input_usd, priced_in),
        output_per_mtok=per_mtok(priced.output_usd, priced_out),
        cost_usd=(priced.total_usd * dec(tokens) / dec(priced_tokens)) if priced_tokens else None,
        coverage=priced_tokens / tokens if tokens else (1.0 if priced_tokens == 0 else 0.0),
        errors=tuple(errors[:5]),
        tokens_by_price=tuple(sorted(named.items())),
    )


@dataclass(frozen=True, slots=True)
class DataGap:
    scope: str
    kind: str
    """gpu_telemetry, engine, tokens, no_gpu_telemetry, api_coverage, api_errors, proxy_unpriced."""
    seconds: float
    message: str


def _span(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:,.1f} s"
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds / 3600:,.1f} h"


def gaps_of(scope: str, t: Totals, api: Sequence[ApiEquivalent], rows: Sequence[LedgerRow]) -> tuple[DataGap, ...]:
    gaps: list[DataGap] = []
    if t.gpu_gap_seconds >= GAP_MIN_SECONDS:
        gaps.append(DataGap(scope, "gpu_telemetry", t.gpu_gap_seconds,
                            f"{scope}: no GPU telemetry for {_span(t.gpu_gap_seconds)} of GPU time (agent down or "
                            "GPU unreadable): still billed on the allocation basis, busy time unknown there "
                            "(the usage basis is a lower bound)."))
    if t.engine_gap_seconds >= GAP_MIN_SECONDS:
        gaps.append(DataGap(scope, "engine", t.engine_gap_seconds,
                            f"{scope}: the engine was not scraped for {_span(t.engine_gap_seconds)} while GPUs "
                            "were held (engine or agent down): tokens from then count only if its counters survived."))
    if t.held_hours_without_tokens:
        gaps.append(DataGap(scope, "tokens", t.held_hours_without_tokens * 3600.0,
                            f"{scope}: {t.held_hours_without_tokens} hours with GPUs held had neither engine scrapes "
                            "nor proxy records: their tokens are unknown, not zero."))
    if t.held_seconds <= 0 and t.tokens > 0:
        gaps.append(DataGap(scope, "no_gpu_telemetry", 0.0,
                            f"{scope}: tokens were served but no GPU was ever sampled: the GPU cost is unknown, "
                            "so no $/Mtok or verdict is given."))
    unpriced = sum(r.api_pricing.unpriced_requests for r in rows)
    if unpriced:
        gaps.append(DataGap(scope, "proxy_unpriced", 0.0,
                            f"{scope}: {unpriced} proxied requests failed or carried no token usage; they are not "
                            "counted as API cost."))
    for a in api:
        if t.tokens and a.coverage < 0.999:
            gaps.append(DataGap(scope, "api_coverage", 0.0,
                                f"{scope}: {a.baseline} priced {a.coverage:.0%} of the tokens (hours computed before "
                                "this baseline was configured, or unpriceable); its $/Mtok is applied to the rest."))
        if a.errors:
            gaps.append(DataGap(scope, "api_errors", 0.0, f"{scope}: {a.baseline} pricing failed: {a.errors[0]}"))
    if t.unattributed_tokens:
        gaps.append(DataGap(scope, "unattributed", 0.0,
                            f"{scope}: {t.unattributed_tokens:,} tokens were served straight to the engine, not "
                            "through the proxy: they are counted and costed, but unattributed (no team, caller "
                            "or route)."))
    return tuple(gaps)


@dataclass(frozen=True, slots=True)
class ScopeReport:
    """One host, or the fleet (every host in the report)."""

    scope: str
    totals: Totals
    allocation: BasisCost
    usage: BasisCost
    api: tuple[ApiEquivalent, ...]
    run_rate: RunRate | None
    verdicts: tuple[Verdict, ...]
    gaps: tuple[DataGap, ...]


def run_rate_of(t: Totals) -> RunRate | None:
    """Monthly run rate: the window's figures scaled from its held wall time to a 730 h month."""
    if t.held_seconds <= 0:
        return None
    scale = dec(MONTH_SECONDS) / dec(t.held_seconds)
    return RunRate(dec(t.tokens) * scale, (t.gpu_usd + t.overhead_usd) * scale, t.energy_usd * scale,
                   t.utilization)


def scope_report(scope: str, rows: Sequence[LedgerRow], baselines: Sequence[str], settings: CostSettings,
                 run_rate: RunRate | None = None, api_monthly: dict[str, Decimal | None] | None = None,
                 capacity: float | None = None, gpus: int | None = None) -> ScopeReport:
    """`capacity`: measured output tokens/s per GPU at the SLOs (None: the linear utilization scale)."""
    t = totals_of(rows)
    api = tuple(api_equivalent(b, rows, t.tokens) for b in baselines)
    gaps = gaps_of(scope, t, api, rows)
    if run_rate is None:
        run_rate = run_rate_of(t)
    verdicts: list[Verdict] = []
    short = insufficient_data(t, settings)
    if run_rate is not None and short is not None:
        verdicts = [Verdict(a.baseline, "unknown", run_rate.self_hosted_usd_per_month, None, None, None, False,
                            run_rate.utilization, None, None, (short,)) for a in api]
    elif run_rate is not None:
        notes = _gap_note(gaps)
        for a in api:
            if api_monthly is not None:
                monthly = api_monthly.get(a.baseline)
            else:
                monthly = a.per_mtok * run_rate.tokens_per_month / dec(1_000_000) if a.per_mtok is not None else None
            verdicts.append(decide(a.baseline, run_rate, monthly, settings.at_risk_margin,
                                   settings.regulated_data, notes, capacity_per_gpu_month(t, capacity),
                                   t.max_gpus if gpus is None else gpus))
    return ScopeReport(scope, t, basis_cost(t, "allocation", settings.output_token_weight),
                       basis_cost(t, "usage", settings.output_token_weight), api, run_rate, tuple(verdicts), gaps)


def total_tokens_per_s(t: Totals, output_tokens_per_s: float | None) -> float | None:
    """A capacity in output tokens/s as all tokens/s, at the window's mix of prompt and output tokens."""
    if output_tokens_per_s is None or t.generation_tokens <= 0:
        return None
    return output_tokens_per_s * t.tokens / t.generation_tokens


def capacity_per_gpu_month(t: Totals, output_tokens_per_s: float | None) -> Decimal | None:
    per_s = total_tokens_per_s(t, output_tokens_per_s)
    return dec(per_s) * dec(MONTH_SECONDS) if per_s is not None else None


def insufficient_data(t: Totals, settings: CostSettings) -> str | None:
    """Why no verdict is given on this little data (cost.min_verdict_hours / min_verdict_tokens), or None."""
    hours = t.held_seconds / 3600
    # GPUs held long enough with nothing served is a finding (the API is cheaper), not too little data.
    if hours >= settings.min_verdict_hours and (t.tokens == 0 or t.tokens >= settings.min_verdict_tokens):
        return None
    return (f"insufficient data: {hours:,.2f} hours, {t.tokens:,} tokens; need {settings.min_verdict_hours:g} "
            f"hours and {settings.min_verdict_tokens:,} tokens (cost.min_verdict_hours, "
            "cost.min_verdict_tokens) before a verdict is given.")


def _gap_note(gaps: Sequence[DataGap]) -> tuple[str, ...]:
    kinds = sorted({g.kind for g in gaps if g.kind in ("gpu_telemetry", "engine", "tokens", "api_coverage")})
    if not kinds:
        return ()
    return (f"Data gaps ({', '.join(kinds)}) make these figures less certain (see the gaps above).",)


@dataclass(frozen=True, slots=True)
class PeriodCost:
    period: PeriodKind
    label: str
    start: datetime
    totals: Totals
    allocation: BasisCost
    usage: BasisCost
    hours_in_period: int = 1
    """Calendar hours of the whole period (a quarter is 2,160 to 2,208)."""
    hours_with_data: int = 0
    """Hours of the period with any measure (any host)."""

    @property
    def coverage(self) -> float:
        return self.hours_with_data / self.hours_in_period if self.hours_in_period else 0.0

    @property
    def partial(self) -> bool:
        return self.hours_with_data < self.hours_in_period


def period_key(kind: PeriodKind, hour: datetime) -> tuple[str, datetime]:
    h = as_utc(hour)
    if kind == "hour":
        return h.strftime("%Y-%m-%d %H:00"), h
    if kind == "day":
        return h.strftime("%Y-%m-%d"), h.replace(hour=0)
    if kind == "month":
        return h.strftime("%Y-%m"), h.replace(day=1, hour=0)
    quarter = quarter_of(h)
    return quarter.label, quarter.start


def period_end(kind: PeriodKind, start: datetime) -> datetime:
    if kind == "hour":
        return start + timedelta(hours=1)
    if kind == "day":
        return start + timedelta(days=1)
    months = 1 if kind == "month" else 3
    month = start.month - 1 + months
    return start.replace(year=start.year + month // 12, month=month % 12 + 1)


def periods_of(rows: Sequence[LedgerRow], output_weight: Decimal) -> tuple[PeriodCost, ...]:
    """Cost per hour, day, month and quarter, each with its coverage: hours with data over the
    calendar hours of the whole period (a quarter with only September measured covers 33 %)."""
    out: list[PeriodCost] = []
    kinds: tuple[PeriodKind, ...] = ("hour", "day", "month", "quarter")
    for kind in kinds:
        groups: dict[tuple[str, datetime], list[LedgerRow]] = defaultdict(list)
        for r in rows:
            groups[period_key(kind, r.hour)].append(r)
        for (label, start), group in sorted(groups.items(), key=lambda kv: kv[0][1]):
            t = totals_of(group)
            hours = round((period_end(kind, start) - start).total_seconds() / 3600)
            with_data = len({r.hour for r in group})
            out.append(PeriodCost(kind, label, start, t, basis_cost(t, "allocation", output_weight),
                                  basis_cost(t, "usage", output_weight), hours, with_data))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class PlanReview:
    """Actual against projected for one planned quarter (monthly run rates)."""

    quarter: str
    projected_tokens_per_month: int
    projected_cost_per_month_usd: Decimal
    hours: int
    actual_tokens_per_month: Decimal | None
    actual_cost_per_month_usd: Decimal | None
    """Allocation basis (what the bill says), overhead included."""
    usd_per_gpu_hour: Decimal | None = None
    """The all-in $ per GPU-hour the plan assumed, where it declares one (cost.plan usd_per_gpu_hour)."""

    @property
    def tokens_ratio(self) -> float | None:
        if self.actual_tokens_per_month is None or not self.projected_tokens_per_month:
            return None
        return float(self.actual_tokens_per_month / dec(self.projected_tokens_per_month))

    @property
    def cost_ratio(self) -> float | None:
        if self.actual_cost_per_month_usd is None or not self.projected_cost_per_month_usd:
            return None
        return float(self.actual_cost_per_month_usd / self.projected_cost_per_month_usd)


def plan_reviews(rows: Sequence[LedgerRow], plan: Sequence[PlanQuarter]) -> tuple[PlanReview, ...]:
    reviews: list[PlanReview] = []
    for quarter in plan:
        in_quarter = [r for r in rows if period_key("quarter", r.hour)[0] == quarter.quarter]
        by_host: dict[str, list[LedgerRow]] = defaultdict(list)
        for r in in_quarter:
            by_host[r.host].append(r)
        rates = [rr for rr in (run_rate_of(totals_of(g)) for g in by_host.values()) if rr is not None]
        tokens = sum((rr.tokens_per_month for rr in rates), Decimal(0)) if rates else None
        cost = sum((rr.self_hosted_usd_per_month for rr in rates), Decimal(0)) if rates else None
        reviews.append(PlanReview(quarter.quarter, quarter.tokens_per_month, quarter.cost_per_month_usd,
                                  len(in_quarter), tokens, cost, quarter.usd_per_gpu_hour))
    return tuple(reviews)


@dataclass(frozen=True, slots=True)
class BaselineInfo:
    id: str
    resolved_model: str
    source: str
    discount: Decimal
    token_ratio: Decimal = Decimal(1)
    """API tokens one self-hosted token is worth (multiplies the API cost of every comparison)."""
    tier: str = "standard"
    tier_pricing: str = "standard prices"
    rates_at: datetime | None = None
    effective: EffectiveRates | None = None
    """USD per million measured tokens at `rates_at` (tier, discount and token ratio applied), or
    None with `rates_error` saying why."""
    rates_error: str = ""


def baseline_info(b: Baseline, at: datetime) -> BaselineInfo:
    """A baseline as the report's baseline table shows it, with its effective rates at `at`."""
    try:
        effective, error = effective_rates(b, at), ""
    except CostError as exc:
        effective, error = None, str(exc)
    return BaselineInfo(b.id, b.resolved_model, b.source, b.discount, b.token_ratio, b.tier, b.tier_pricing,
                        at, effective, error)


@dataclass(frozen=True, slots=True)
class CostReport:
    generated_at: datetime
    start: datetime
    end: datetime
    host: str | None
    """The host asked for, or None for every host in the store."""
    baselines: tuple[BaselineInfo, ...]
    hosts: tuple[ScopeReport, ...]
    total: ScopeReport
    """The single host, or the fleet (scope "fleet") when the report covers several."""
    periods: tuple[PeriodCost, ...]
    plan: tuple[PlanReview, ...]
    output_token_weight: Decimal
    at_risk_margin: float
    regulated_data: bool
    price_segments: tuple[PriceSegment, ...] = ()
    """Which self-hosted prices applied to which hours (per host)."""
    period_label: str = ""
    source: ReportSource | None = None
    attribution: tuple[Attribution, ...] = ()
    """The whole report's cost by model, team, caller and route (shares add up to the total)."""
    host_attribution: tuple[tuple[str, Attribution], ...] = ()
    """Per host, the cost by team (for the exported campwatch_cost_usd_total{host,team})."""
    budgets: tuple[TeamBudget, ...] = ()
    """Per team: monthly budget, spend in the month of the report's end so far, run rate."""
    hybrid: tuple[HybridResult, ...] = ()
    """Per baseline: API only, self-host only and the cheapest mix (agent.cost.hybrid)."""
    hybrid_notes: tuple[str, ...] = ()
    """Why no hybrid figures are given, or which capacity basis they rest on."""
    capacities: tuple[Capacity, ...] = ()
    """Per host (pool): the measured capacity at the SLOs, or why there is none."""
    flips: tuple[Flip, ...] = ()
    """Per baseline of the total scope: when the volume trend flips the verdict (agent.cost.forecast)."""

    @property
    def gaps(self) -> tuple[DataGap, ...]:
        scopes = self.hosts if len(self.hosts) > 1 else (self.total,)
        return tuple(g for s in scopes for g in s.gaps)


@dataclass(frozen=True, slots=True)
class ReportSource:
    """Where a report looked: the database (password masked), the hosts asked for and found."""

    database: str
    hosts_asked: str
    """A host name, or "all hosts"."""
    hosts_found: tuple[str, ...]
    elsewhere: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """For an empty answer: per table, the hosts it holds (what exists instead)."""


def summarize(
    rows: Sequence[LedgerRow], settings: CostSettings, baselines: Sequence[Baseline], start: datetime,
    end: datetime, host: str | None, generated_at: datetime | None = None,
    segments: tuple[PriceSegment, ...] = (), period_label: str = "", source: ReportSource | None = None,
    groups: Mapping[tuple[str, datetime], Sequence[RequestGroup]] | None = None,
    capacities: Sequence[Capacity] = (),
) -> CostReport:
    """The report over priced hours (pure); `groups` (the hours' request groups) enable attribution."""
    ids = [b.id for b in baselines]
    by_host: dict[str, list[LedgerRow]] = defaultdict(list)
    for r in rows:
        by_host[r.host].append(r)
    measured = {c.pool: c.tokens_per_s_per_gpu for c in capacities}
    periods = periods_of(rows, settings.output_token_weight)
    hosts = tuple(scope_report(h, by_host[h], ids, settings, capacity=measured.get(h)) for h in sorted(by_host))
    fleet_cap = fleet_capacity([c for c in capacities if c.pool in by_host]) if len(capacities) >= len(by_host) \
        else None
    if len(hosts) == 1:
        total = hosts[0]
    else:
        rates = [s.run_rate for s in hosts if s.run_rate is not None]
        fleet_rate = _sum_rates(rates)
        api_monthly: dict[str, Decimal | None] = {}
        for b in ids:
            parts = [_api_monthly(s, b) for s in hosts if s.run_rate is not None]
            api_monthly[b] = sum((p for p in parts if p is not None), Decimal(0)) if parts and all(
                p is not None for p in parts) else None
        total = scope_report(FLEET, rows, ids, settings, fleet_rate, api_monthly if fleet_rate else None,
                             capacity=fleet_cap, gpus=sum(s.totals.max_gpus for s in hosts))
    return CostReport(
        generated_at=generated_at or datetime.now(UTC), start=as_utc(start), end=as_utc(end), host=host,
        baselines=tuple(baseline_info(b, min(as_utc(end), generated_at or datetime.now(UTC)) - timedelta(seconds=1))
                        for b in baselines),
        hosts=hosts, total=total, periods=periods,
        plan=plan_reviews(rows, settings.plan), output_token_weight=settings.output_token_weight,
        at_risk_margin=settings.at_risk_margin, regulated_data=settings.regulated_data,
        price_segments=segments, period_label=period_label, source=source,
        **_attributions(rows, groups, settings, as_utc(end), generated_at or datetime.now(UTC)),
        **_hybrid(rows, hosts, total, settings, measured.get(hosts[0].scope) if len(hosts) == 1 else fleet_cap),
        capacities=tuple(capacities),
        flips=flips_of(total, periods, as_utc(end)),
    )


MONTH_MIN_HOURS = 168
"""A month enters the volume trend with at least a week of hours with data."""


def month_volumes(periods: Sequence[PeriodCost]) -> list[MonthVolume]:
    """Each month's tokens scaled to 730 h by its hours with data (months with a week of data or more)."""
    return [MonthVolume(p.start, p.totals.tokens * 730 / p.hours_with_data) for p in periods
            if p.period == "month" and p.hours_with_data >= MONTH_MIN_HOURS]


def flips_of(total: ScopeReport, periods: Sequence[PeriodCost], end: datetime) -> tuple[Flip, ...]:
    trend = fit_trend(month_volumes(periods))
    return tuple(forecast_flip(v.baseline, trend, v.breakeven_tokens_per_month, v.breakeven_reachable, end)
                 for v in total.verdicts if v.state != "unknown")


def demand_by_hour(rows: Sequence[LedgerRow]) -> list[float]:
    """Tokens served per hour (every host summed), one entry per hour with any measure, in time order."""
    by_hour: dict[datetime, int] = defaultdict(int)
    for r in rows:
        by_hour[r.hour] += r.prompt_tokens + r.generation_tokens
    return [float(by_hour[h]) for h in sorted(by_hour)]


def utilization_capacity(t: Totals) -> float | None:
    """Tokens/s one GPU serves when busy all the time, on the linear NVML-utilization scale
    (tokens / busy GPU-seconds): the basis used when no measured capacity is known."""
    return t.tokens / t.busy_gpu_seconds if t.busy_gpu_seconds > 0 and t.tokens > 0 else None


def _hybrid(rows: Sequence[LedgerRow], hosts: Sequence[ScopeReport], total: ScopeReport, settings: CostSettings,
            measured_output: float | None) -> dict[str, Any]:
    t = total.totals
    if total.run_rate is None or t.allocated_gpu_seconds <= 0 or t.tokens <= 0:
        return {"hybrid_notes": ("No hybrid mix: it needs GPU time and tokens measured in the window.",)}
    short = insufficient_data(t, settings)
    if short is not None:
        return {"hybrid_notes": (f"No hybrid mix: {short}",)}
    basis: CapacityBasis
    measured = total_tokens_per_s(t, measured_output)
    if measured is None:
        linear = utilization_capacity(t)
        if linear is None:
            return {"hybrid_notes": ("No hybrid mix: no busy GPU time was measured, so the capacity per GPU is "
                                     "unknown.",)}
        value, basis = linear, "utilization"
    else:
        value, basis = measured, "measured"
    overhead = sum((s.totals.overhead_usd * dec(MONTH_SECONDS) / dec(s.totals.held_seconds)
                    for s in hosts if s.totals.held_seconds > 0), Decimal(0))
    costs = HybridCosts(gpu_usd_per_month=t.gpu_usd * dec(MONTH_SECONDS) / dec(t.allocated_gpu_seconds),
                        overhead_usd_per_month=overhead,
                        energy_usd_per_token=t.energy_usd / dec(t.tokens),
                        today_usd_per_month=total.run_rate.self_hosted_usd_per_month)
    demand = demand_by_hour(rows)
    regulated = demand if settings.regulated_data else None
    results = tuple(hybrid_optimum(a.baseline, demand, value, a.per_mtok / MTOK, costs, regulated, basis)
                    for a in total.api if a.per_mtok is not None)
    words = ("measured at saturation within the SLOs (output tokens/s scaled to all tokens at the window's "
             "prompt/output mix)" if basis == "measured" else
             "tokens per busy GPU-second, a linear scale of NVML utilization (no measured capacity)")
    return {"hybrid": results, "hybrid_notes": (f"Capacity per GPU: {value:,.1f} tokens/s, {words}.",)}


def _attributions(rows: Sequence[LedgerRow], groups: Mapping[tuple[str, datetime], Sequence[RequestGroup]] | None,
                  settings: CostSettings, end: datetime, now: datetime) -> dict[str, Any]:
    if groups is None:
        return {}
    weight = settings.output_token_weight
    by_host: dict[str, list[LedgerRow]] = defaultdict(list)
    for r in rows:
        by_host[r.host].append(r)
    month_end = min(end, now)
    month_start = month_end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if month_start == month_end:  # a report ending at a month boundary: the month before it
        month_start = (month_start - timedelta(days=1)).replace(day=1)
    month_rows = [r for r in rows if month_start <= r.hour < month_end]
    month_seconds = (period_end("month", month_start) - month_start).total_seconds()
    attribution = tuple(attribute(rows, groups, by, settings.teams, weight) for by in DIMENSIONS)
    by_team = next(a for a in attribution if a.by == "team")
    hosts = sorted(by_host)
    budgets: tuple[TeamBudget, ...] = ()
    if settings.teams or settings.team_budgets_usd_per_month:  # showback configured: the month so far
        budgets = team_budgets(attribute(month_rows, groups, "team", settings.teams, weight),
                               settings.team_budgets_usd_per_month,
                               (month_end - month_start).total_seconds(), month_seconds)
    return {
        "attribution": attribution,
        "host_attribution": ((hosts[0], by_team),) if len(hosts) == 1 else tuple(
            (h, attribute(by_host[h], groups, "team", settings.teams, weight)) for h in hosts),
        "budgets": budgets,
    }


def _sum_rates(rates: Sequence[RunRate]) -> RunRate | None:
    if not rates:
        return None
    total = rates[0]
    for rate in rates[1:]:
        total = total + rate
    return total


def _api_monthly(scope: ScopeReport, baseline: str) -> Decimal | None:
    for v in scope.verdicts:
        if v.baseline == baseline:
            return v.api_usd_per_month
    return None


def build_report(
    engine: Engine, settings: CostSettings, since: timedelta | None = None, host: str | None = None, *,
    now: datetime | None = None, start: datetime | None = None, end: datetime | None = None,
    period_label: str = "", refresh: bool = False,
) -> CostReport:
    """The report on the whole hours of [start, end) (or the `since` window up to `now`), priced with
    `settings` as they are now. Reads only, unless `refresh` (the running agent's cost job) stores
    the measures first. Raises CostError (bad baselines, price file) or StoreError."""
    moment = as_utc(now) if now is not None else datetime.now(UTC)
    if start is None:
        if since is None or since <= timedelta(0):
            raise ValueError(f"since: expected a positive duration, got {since}")
        end = moment
        start = end - since
    end = as_utc(end) if end is not None else moment
    start = as_utc(start)
    baselines = resolve_baselines(settings)
    if refresh:
        refresh_ledger(engine, settings, start, min(end, moment), host)
    measures, groups = measures_for_report(engine, settings, start, end, host, now=moment)
    fleet = None
    if host is not None and (settings.fleet_overhead_usd_per_month > 0 or settings.fleet_overhead_changes):
        # The host's share of the fleet overhead depends on every host's GPU-seconds in each hour.
        everyone, _ = read_measures(engine, start, end, None, with_groups=False)
        fleet = [m for m in everyone if m.host != host] + list(measures)
    rows, segments = price_rows(measures, groups, settings, baselines, fleet=fleet)
    found = tuple(sorted({m.host for m in measures}))
    capacities = measure_capacities(engine, settings, start, end, found, rows)
    source = ReportSource(engine.url.render_as_string(hide_password=True), host or "all hosts", found,
                          _elsewhere(engine) if not found else ())
    return summarize(rows, settings, baselines, start, end, host, generated_at=moment, segments=segments,
                     period_label=period_label, source=source, groups=groups, capacities=capacities)


def capacity_slo(settings: CostSettings) -> Slo:
    return Slo(settings.slo_ttft_p99_s, settings.slo_itl_p99_s, settings.capacity_min_waiting,
               settings.capacity_min_windows)


def rollup_split(since: datetime, first_raw: datetime | None, end: datetime, window_s: float) -> datetime:
    """Where the capacity windows switch from the 1-minute rollups to the raw scrapes: `since` when
    raw scrapes reach back to it (within a window), else the second window boundary after the first
    raw scrape (its first whole window with a scrape before it); `end` without raw scrapes."""
    if first_raw is None:
        return end
    if first_raw <= since + timedelta(seconds=window_s):
        return since
    epoch = first_raw.timestamp()
    boundary = (math.floor(epoch / window_s) + 2) * window_s
    return min(datetime.fromtimestamp(boundary, UTC), end)


def capacity_windows(conn: Connection, host: str, since: datetime, end: datetime, window_s: float,
                     min_waiting: float) -> list[LoadWindow]:
    """The host's load windows in [since, end): from the raw scrapes where retention kept them, and
    from the 1-minute rollups before that (so a quarter's estimate outlives raw retention)."""
    from agent.cost.queries import earliest_engine_raw, load_readings, load_rollup_readings

    split = rollup_split(since, earliest_engine_raw(conn, host, since, end), end, window_s)
    if split <= since:
        return load_windows(load_readings(conn, host, since, end, window_s, min_waiting), window_s, min_waiting)
    old = load_windows(load_rollup_readings(conn, host, since, split, window_s, min_waiting), window_s, min_waiting)
    windows = [w for w in old if w.start < split]
    if split < end:
        raw = load_readings(conn, host, split - timedelta(seconds=window_s), end, window_s, min_waiting)
        windows += [w for w in load_windows(raw, window_s, min_waiting) if w.start >= split]
    return windows


def measure_capacities(engine: Engine, settings: CostSettings, start: datetime, end: datetime,
                       hosts: Sequence[str], rows: Sequence[LedgerRow]) -> tuple[Capacity, ...]:
    """Each host's measured capacity from its engine history in the last cost.capacity_days of the
    window: raw scrapes, and the 1-minute rollups where retention removed them (reads only)."""

    gpus: dict[str, int] = defaultdict(int)
    for r in rows:
        gpus[r.host] = max(gpus[r.host], r.gpus)
    slo, window = capacity_slo(settings), settings.capacity_window_s
    since = max(start, end - timedelta(days=settings.capacity_days))
    out: list[Capacity] = []
    for host in hosts:
        try:
            with engine.connect() as conn:
                windows = capacity_windows(conn, host, since, end, window, slo.min_waiting)
        except SQLAlchemyError as exc:  # the capacity is an extra: the report keeps the utilization basis
            out.append(Capacity(host, gpus[host], None, 0, 0, 0, 0, None, None, (),
                                f"{host}: capacity not measured: the engine samples could not be read "
                                f"({type(exc).__name__})."))
            continue
        out.append(estimate_capacity(host, windows, gpus[host], slo, window))
    return tuple(out)


def _elsewhere(engine: Engine) -> tuple[tuple[str, tuple[str, ...]], ...]:
    from agent.cost.queries import all_hosts

    with engine.connect() as conn:
        return tuple((table, tuple(hosts)) for table, hosts in all_hosts(conn).items())


def report_points(report: CostReport) -> list[Point]:
    """The exported cost gauges, one set per host of the report (label host); unknown values are left out."""
    points: list[Point] = []
    for scope in report.hosts:
        points += _scope_points(scope)
    for flip in report.flips:
        if flip.days_from_end is not None:
            points.append(Point("campwatch_verdict_flip_days", flip.days_from_end,
                                labels(baseline=flip.baseline, host=report.total.scope)))
    for host, by_team in report.host_attribution:
        for share in by_team.shares:
            for basis, usd in (("allocation", share.allocation_usd), ("usage", share.usage_usd)):
                points.append(Point("campwatch_cost_usd_total", float(usd),
                                    labels(host=host, team=share.key, basis=basis)))
    scope_name = report.total.scope
    for b in report.budgets:
        key = labels(host=scope_name, team=b.team)
        if b.budget_usd is not None:
            points.append(Point("campwatch_team_budget_usd", float(b.budget_usd), key))
        points.append(Point("campwatch_team_cost_month_to_date_usd", float(b.month_to_date_usd), key))
        points.append(Point("campwatch_team_cost_run_rate_usd", float(b.run_rate_usd), key))
    return points


def _scope_points(scope: ScopeReport) -> list[Point]:
    host = scope.scope
    points: list[Point] = []
    for basis in (scope.allocation, scope.usage):
        if basis.per_mtok is not None:
            points.append(Point("campwatch_cost_per_mtok_usd", float(basis.per_mtok),
                                labels(basis=basis.basis, host=host)))
    if scope.allocation.energy_per_mtok is not None:
        points.append(Point("campwatch_cost_energy_per_mtok_usd", float(scope.allocation.energy_per_mtok),
                            labels(host=host)))
    if scope.totals.joules_per_1k_tokens is not None:
        points.append(Point("campwatch_energy_joules_per_1k_tokens", scope.totals.joules_per_1k_tokens,
                            labels(host=host)))
    for a in scope.api:
        if a.per_mtok is not None:
            points.append(Point("campwatch_api_cost_per_mtok_usd", float(a.per_mtok),
                                labels(baseline=a.baseline, host=host)))
    for v in scope.verdicts:
        key = labels(baseline=v.baseline, host=host)
        if v.breakeven_tokens_per_month is not None:
            points.append(Point("campwatch_breakeven_tokens_per_month", float(v.breakeven_tokens_per_month), key))
        elif not v.breakeven_reachable and v.api_usd_per_month is not None and v.state != "unknown" \
                and scope.totals.tokens > 0:
            points.append(Point("campwatch_breakeven_tokens_per_month", math.inf, key))
        if v.holds is not None:
            points.append(Point("campwatch_camp_holds", 1.0 if v.holds else 0.0, key))
        if v.savings_usd_per_month is not None:
            points.append(Point("campwatch_cost_savings_usd_per_month", float(v.savings_usd_per_month), key))
    return points


def report_to_json(report: CostReport) -> dict[str, Any]:
    """The report as JSON-ready data: money as decimal strings, times as ISO 8601, unknowns as null."""
    data = _plain(report)
    assert isinstance(data, dict)
    data["gaps"] = [_plain(g) for g in report.gaps]
    return data


def _plain(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in _PROPERTIES.get(type(value).__name__, ()):
            out[name] = _plain(getattr(value, name))
        return out
    if isinstance(value, BaseModel):
        return _plain(value.model_dump())
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


_PROPERTIES: dict[str, tuple[str, ...]] = {
    "Totals": ("tokens", "utilization", "joules_per_1k_tokens"),
    "PeriodCost": ("coverage", "partial"),
    "ApiEquivalent": ("price_shares",),
    "PriceSegment": ("description",),
    "TeamBudget": ("over_budget",),
    "BasisCost": ("total_usd",),
    "ApiPrice": ("total_usd",),
    "RunRate": ("self_hosted_usd_per_month",),
    "Verdict": ("holds",),
    "PlanReview": ("tokens_ratio", "cost_ratio"),
    "MixCost": ("api_share",),
}
