"""The hourly cost ledger: one row per (hour, host), recomputed idempotently from raw samples.

A row holds what was measured (GPU time, energy, tokens), what it cost on both bases, and what
the same traffic would have cost on each API baseline (the `api_pricing` JSON), so reports and
notebooks keep working after raw samples are purged by retention."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from agent.config import CostSettings, PricingSettings
from agent.cost import queries
from agent.cost.baselines import ApiPrice, Baseline, TokenUsage, price_histograms, price_usages, resolve_baselines
from agent.cost.measure import GpuHour, measure_gpus
from agent.cost.selfhosted import hour_cost
from agent.cost.tokens import EngineHour, RequestTokens, cached_of, measure_engine, proxy_hour
from agent.cost.units import HOUR, hour_ceil, hour_floor, hours_between, utc
from agent.errors import CostError, StoreError
from agent.store.schema import cost_ledger

log = logging.getLogger(__name__)

TokenSource = Literal["proxy", "engine", "none"]
PROXY_BYPASS_TOLERANCE = 1.05
"""Proxy records are the token source unless the engine counted more than 5 % more tokens in the
same hour (clients bypassing the proxy): then the engine counters are."""


@dataclass(frozen=True, slots=True)
class ApiPricing:
    """What one hour's traffic would have cost per baseline, and how it was priced."""

    method: str
    """requests (proxy records, request by request), histograms or counters (/metrics only), none."""
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    requests: int = 0
    unpriced_requests: int = 0
    prices: Mapping[str, ApiPrice] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)

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

    @classmethod
    def from_json(cls, text: str | None) -> ApiPricing:
        if not text:
            return cls("none")
        try:
            raw: Any = json.loads(text)
            prices = {k: ApiPrice(Decimal(v["input"]), Decimal(v["output"]), Decimal(v.get("fees", "0")))
                      for k, v in raw.get("baselines", {}).items()}
            return cls(str(raw["method"]), int(raw["input_tokens"]), int(raw["output_tokens"]),
                       int(raw["cached_tokens"]), int(raw["requests"]), int(raw["unpriced_requests"]),
                       prices, {str(k): str(v) for k, v in raw.get("errors", {}).items()})
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            return cls("none", errors={"*": f"unreadable api_pricing in the ledger: {exc}"})


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One cost_ledger row (column names match agent/store/schema.py)."""

    hour: datetime
    host: str
    gpus: int
    held_seconds: float
    allocated_gpu_seconds: float
    observed_gpu_seconds: float
    gpu_gap_seconds: float
    busy_gpu_seconds: float
    engine_gap_seconds: float
    energy_joules: float
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
    simulated: bool
    computed_at: datetime

    def values(self) -> dict[str, object]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["api_pricing"] = self.api_pricing.to_json()
        return out

    def measured(self) -> dict[str, object]:
        """Everything but computed_at: two recomputations of the same data compare equal here."""
        out = self.values()
        out.pop("computed_at")
        return out


def choose_source(proxy_tokens: int | None, engine: EngineHour | None) -> TokenSource:
    engine_tokens = engine.prompt_tokens + engine.generation_tokens if engine is not None else 0
    if proxy_tokens is not None and proxy_tokens > 0:
        if engine is not None and engine_tokens > proxy_tokens * PROXY_BYPASS_TOLERANCE:
            return "engine"
        return "proxy"
    if engine is not None:
        return "engine"
    return "proxy" if proxy_tokens is not None else "none"


def price_proxy_hour(records: Sequence[RequestTokens], baselines: Sequence[Baseline]) -> ApiPricing:
    summary = proxy_hour(records[0].ts if records else datetime.now(UTC), records)
    usages = [(r.ts, TokenUsage(r.prompt_tokens or 0, r.completion_tokens or 0, cached_of(r)))
              for r in records if r.priceable]
    prices: dict[str, ApiPrice] = {}
    errors: dict[str, str] = {}
    for baseline in baselines:
        try:
            prices[baseline.id] = price_usages(baseline, usages)
        except CostError as exc:
            errors[baseline.id] = str(exc)
    return ApiPricing("requests", summary.prompt_tokens, summary.generation_tokens, summary.cached_tokens,
                      summary.requests, summary.unpriced_requests, prices, errors)


def price_engine_hour(engine: EngineHour, baselines: Sequence[Baseline]) -> ApiPricing:
    totals = TokenUsage(engine.prompt_tokens, engine.generation_tokens,
                        min(engine.cached_tokens, engine.prompt_tokens), engine.requests)
    prices: dict[str, ApiPrice] = {}
    errors: dict[str, str] = {}
    method = "none"
    if engine.prompt_tokens + engine.generation_tokens > 0:
        for baseline in baselines:
            try:
                result = price_histograms(baseline, engine.hour + HOUR / 2, engine.prompt_histogram, totals)
            except CostError as exc:
                errors[baseline.id] = str(exc)
                continue
            prices[baseline.id] = result.price
            method = result.method
    return ApiPricing(method, totals.input_tokens, totals.output_tokens, totals.cache_read_tokens,
                      totals.requests, 0, prices, errors)


def assemble_row(
    host: str,
    hour: datetime,
    gpu: GpuHour | None,
    engine: EngineHour | None,
    records: Sequence[RequestTokens],
    pricing: PricingSettings,
    overhead_usd_per_month: Decimal,
    baselines: Sequence[Baseline],
    engine_configured: bool,
    computed_at: datetime,
) -> LedgerRow | None:
    """One hour's ledger row from its measurements (pure); None when nothing was measured."""
    if gpu is None and engine is None and not records:
        return None
    gpu = gpu or GpuHour(hour, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)
    proxy = proxy_hour(hour, records) if records else None
    source = choose_source(proxy.prompt_tokens + proxy.generation_tokens if proxy else None, engine)
    if source == "proxy":
        api = price_proxy_hour(records, baselines)
    elif source == "engine" and engine is not None:
        api = price_engine_hour(engine, baselines)
    else:
        api = ApiPricing("none")
    if source == "engine" and engine is not None and proxy is not None:
        api = ApiPricing(api.method, api.input_tokens, api.output_tokens, api.cached_tokens, api.requests,
                         proxy.unpriced_requests, api.prices, api.errors)
    cost = hour_cost(pricing, gpu, overhead_usd_per_month)
    engine_observed = engine.observed_seconds if engine is not None else 0.0
    engine_gap = max(gpu.held_seconds - engine_observed, 0.0) if engine_configured else 0.0
    return LedgerRow(
        hour=hour, host=host, gpus=gpu.gpus, held_seconds=gpu.held_seconds,
        allocated_gpu_seconds=gpu.allocated_gpu_seconds, observed_gpu_seconds=gpu.observed_gpu_seconds,
        gpu_gap_seconds=gpu.gpu_gap_seconds, busy_gpu_seconds=gpu.busy_gpu_seconds,
        engine_gap_seconds=engine_gap, energy_joules=gpu.energy_joules,
        gpu_cost_usd=cost.gpu_usd, usage_gpu_cost_usd=cost.usage_gpu_usd,
        energy_cost_usd=cost.energy_usd, overhead_usd=cost.overhead_usd,
        prompt_tokens=api.input_tokens, generation_tokens=api.output_tokens, cached_tokens=api.cached_tokens,
        requests=api.requests, token_source=source, api_pricing=api,
        simulated=gpu.simulated or bool(engine and engine.simulated),
        computed_at=computed_at,
    )


def pricing_for(settings: CostSettings, host: str) -> PricingSettings:
    return settings.pools.get(host, settings.pricing)


def compute_rows(
    engine: Engine, settings: CostSettings, host: str, start: datetime, end: datetime,
    baselines: Sequence[Baseline], computed_at: datetime,
) -> list[LedgerRow]:
    """Ledger rows of one host for the whole hours overlapping [start, end), hour by hour."""
    rows: list[LedgerRow] = []
    pricing = pricing_for(settings, host)
    with engine.connect() as conn:
        engine_configured = queries.has_engine_rows(conn, host)
        for hour in hours_between(start, end):
            until = hour + HOUR
            gpu = measure_gpus(queries.gpu_readings(conn, host, hour, until), hour, until, settings.gap_factor)
            eng = measure_engine(queries.engine_readings(conn, host, hour, until), hour, until,
                                 settings.gap_factor)
            records = queries.request_tokens(conn, host, hour, until)
            row = assemble_row(host, hour, gpu.get(hour), eng.get(hour), records, pricing,
                               settings.overhead_usd_per_month, baselines, engine_configured, computed_at)
            if row is not None:
                rows.append(row)
    return rows


def recompute_ledger(
    engine: Engine, settings: CostSettings, start: datetime, end: datetime, host: str | None = None,
    *, now: datetime | None = None,
) -> int:
    """Recompute and upsert the ledger rows of the whole hours overlapping [start, end), for one host
    or every host with raw data there. Returns the number of rows written.

    Idempotent: the same raw data gives the same rows. Retention purges raw tables at different
    times, so an hour is only overwritten while every raw table that has rows for the host reaches
    back to it; older hours are filled in when missing, never replaced, and the hour where the
    latest-starting table begins is only replaced by a row that covers at least as much."""
    baselines = resolve_baselines(settings)
    start, end = utc(start), utc(end)
    computed_at = utc(now) if now is not None else datetime.now(UTC)
    try:
        with engine.connect() as conn:
            hosts = [host] if host is not None else queries.hosts_with_raw(conn, hour_floor(start), hour_ceil(end))
            horizons = {h: queries.earliest_raw(conn, h) for h in hosts}
        written = 0
        for h in hosts:
            earliest = horizons[h]
            if not earliest:
                continue
            first = max(hour_floor(start), hour_floor(min(earliest)))
            rows = compute_rows(engine, settings, h, first, end, baselines, computed_at)
            written += _upsert(engine, rows, complete_from=hour_floor(max(earliest)))
        return written
    except CostError:
        raise
    except Exception as exc:
        if exc.__class__.__module__.startswith("sqlalchemy"):
            raise StoreError(f"cost ledger: {exc}") from exc
        raise


def _upsert(engine: Engine, rows: Sequence[LedgerRow], complete_from: datetime) -> int:
    """Replace rows from `complete_from` on; before it, only add missing rows (see recompute_ledger)."""
    if not rows:
        return 0
    c = cost_ledger.c
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    written = 0
    with engine.begin() as conn:
        replace = [row for row in rows if row.hour > complete_from]
        keep = [row for row in rows if row.hour < complete_from]
        for row in rows:
            if row.hour != complete_from:
                continue
            existing = conn.execute(select(c.held_seconds, c.prompt_tokens, c.generation_tokens).where(
                c.host == row.host, c.hour == row.hour)).first()
            covered = (row.held_seconds, row.prompt_tokens + row.generation_tokens)
            if existing is None or (float(existing[0]), int(existing[1]) + int(existing[2])) <= covered:
                replace.append(row)
        if keep:
            added = conn.execute(insert(cost_ledger).on_conflict_do_nothing(index_elements=["hour", "host"]),
                                 [row.values() for row in keep])
            written += max(added.rowcount, 0)
        if replace:
            statement = insert(cost_ledger)
            values = [row.values() for row in replace]
            updated = {name: statement.excluded[name] for name in values[0] if name not in ("hour", "host")}
            conn.execute(statement.on_conflict_do_update(index_elements=["hour", "host"], set_=updated), values)
            written += len(values)
    return written


def read_ledger(engine: Engine, start: datetime, end: datetime, host: str | None = None) -> list[LedgerRow]:
    """Ledger rows with hour in [floor(start), end), oldest first."""
    c = cost_ledger.c
    query = select(cost_ledger).where(c.hour >= hour_floor(start), c.hour < utc(end))
    if host is not None:
        query = query.where(c.host == host)
    with engine.connect() as conn:
        result = conn.execute(query.order_by(c.hour, c.host)).mappings().all()
    rows: list[LedgerRow] = []
    for r in result:
        rows.append(LedgerRow(
            hour=utc(r["hour"]), host=r["host"], gpus=int(r["gpus"]), held_seconds=float(r["held_seconds"]),
            allocated_gpu_seconds=float(r["allocated_gpu_seconds"]),
            observed_gpu_seconds=float(r["observed_gpu_seconds"]), gpu_gap_seconds=float(r["gpu_gap_seconds"]),
            busy_gpu_seconds=float(r["busy_gpu_seconds"]), engine_gap_seconds=float(r["engine_gap_seconds"]),
            energy_joules=float(r["energy_joules"]),
            gpu_cost_usd=_money(r["gpu_cost_usd"]), usage_gpu_cost_usd=_money(r["usage_gpu_cost_usd"]),
            energy_cost_usd=_money(r["energy_cost_usd"]), overhead_usd=_money(r["overhead_usd"]),
            prompt_tokens=int(r["prompt_tokens"]), generation_tokens=int(r["generation_tokens"]),
            cached_tokens=int(r["cached_tokens"]), requests=int(r["requests"]),
            token_source=_source(r["token_source"]), api_pricing=ApiPricing.from_json(r["api_pricing"]),
            simulated=bool(r["simulated"]), computed_at=utc(r["computed_at"]),
        ))
    return rows


def refresh_ledger(engine: Engine, settings: CostSettings, start: datetime, now: datetime,
                   host: str | None = None) -> int:
    """Bring the ledger up to date for [start, now): recompute from each host's last ledger hour
    (which may have been partial) or from `start` when the host has none in the range."""
    with engine.connect() as conn:
        hosts = [host] if host is not None else sorted(
            set(queries.hosts_with_raw(conn, hour_floor(start), now)) | set(queries.ledger_hosts(conn, start, now)))
        lasts = {h: queries.last_ledger_hour(conn, h) for h in hosts}
    written = 0
    for h in hosts:
        last = lasts[h]
        first = max(hour_floor(start), last) if last is not None else hour_floor(start)
        written += recompute_ledger(engine, settings, first, now, h, now=now)
    return written


def _money(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, (int, float, str)):
        return Decimal(str(value))
    raise TypeError(f"expected money, got {value!r}")


def _source(value: object) -> TokenSource:
    if value in ("proxy", "engine", "none"):
        return value
    return "none"

