"""API price baselines: what the same traffic would have cost on a managed API.

Prices come from genai-prices' bundled data (offline; its update functions are never called) or
from the local price file (agent.cost.pricefile), which wins for the models it lists. Traffic is
priced request by request: a request's input size picks its price tier (the providers' cliff
model: above the threshold, all its tokens pay the tier rate), so requests are grouped by
(price in force at their timestamp, tier) and each group is priced at that tier's flat rates,
which equals the sum of per-request prices exactly.

Fair comparison (docs/cost.md): a baseline's `token_ratio` (API tokens per self-hosted token)
multiplies its price of the measured traffic, and its `tier` (batch, flex, priority) is priced with
genai-prices' tier prices where it has them, else with the declared `tier_discount`; both act in
`_price_group`, the one place every API price passes through."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from importlib.metadata import version

from genai_prices import Usage, calc_price
from genai_prices.types import ModelInfo, ModelPrice, PriceVariant, Tier, TieredPrices

from agent.config import BaselineSettings, CostSettings
from agent.cost import histograms as hist
from agent.cost.measures import RequestGroup
from agent.cost.pricefile import PriceEntry, entry_on, load_price_file
from agent.cost.units import MTOK
from agent.errors import BaselineError, CostError, Problem
from agent.samples import HistogramSnapshot

GENAI_PRICES_VERSION = version("genai-prices")
_REQUEST_FEE_KEY = "requests_kcount"


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens of one request (or one group priced at the same rates). Input includes cached."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    requests: int = 1
    cache_write_tokens: int = 0
    """Input tokens written to the API's prompt cache (priced at the cache-write rate where the model
    has one): only where a source reports them; campwatch's proxy and engines report none today."""


@dataclass(frozen=True, slots=True)
class ApiPrice:
    """An API-equivalent cost in USD, split as the provider bills it."""

    input_usd: Decimal = Decimal(0)
    output_usd: Decimal = Decimal(0)
    fees_usd: Decimal = Decimal(0)
    """Per-request fees, where the model has them."""

    @property
    def total_usd(self) -> Decimal:
        return self.input_usd + self.output_usd + self.fees_usd

    def __add__(self, other: ApiPrice) -> ApiPrice:
        return ApiPrice(self.input_usd + other.input_usd, self.output_usd + other.output_usd,
                        self.fees_usd + other.fees_usd)


@dataclass(frozen=True, slots=True)
class Baseline:
    """A resolved API baseline. `price_at(ts)` is the price in force at a request's time."""

    id: str
    """provider/model as configured, e.g. openai/gpt-4o: the exported `baseline` label."""
    provider: str
    model: str
    resolved_model: str
    discount: Decimal
    source: str
    as_of: date | None
    price_at: Callable[[datetime], ModelPrice] = field(compare=False, repr=False)
    discount_on: Callable[[date], Decimal] | None = field(default=None, compare=False, repr=False)
    """The discount in force on a day (dated discount changes); None: `discount` always."""
    price_label: Callable[[ModelPrice], str] = field(default=lambda _p: "", compare=False, repr=False)
    """Names a time-of-day or dated price ("off-peak 16:30-00:30 UTC"); "" for the plain price."""
    rate_cache: dict[tuple[int, int], tuple[Decimal, Decimal, Decimal, Decimal, Decimal]] = field(
        default_factory=dict, compare=False, repr=False)
    """Per-token rates of each (price, tier band) met so far: see _price_group."""
    token_ratio: Decimal = Decimal(1)
    """API tokens one self-hosted token is worth: multiplies every price of the measured traffic."""
    tier: str = "standard"
    tier_pricing: str = "standard prices"
    """How the tier is priced, in words (genai-prices' batch prices, a declared discount)."""

    def keep_on(self, day: date) -> Decimal:
        """The share of the list price paid on `day` (1 - discount)."""
        return 1 - (self.discount_on(day) if self.discount_on is not None else self.discount)

    def factor_on(self, day: date) -> Decimal:
        """What the tier's list price of the measured tokens is multiplied by on `day`: the share
        paid (1 - negotiated discount) times the token ratio."""
        return self.keep_on(day) * self.token_ratio


def resolve_baselines(settings: CostSettings) -> tuple[Baseline, ...]:
    """Every configured baseline, resolved; one BaselineError (a ConfigError and a CostError) naming
    every baseline that has no price."""
    entries = load_price_file(settings.price_file) if settings.price_file else {}
    problems: list[Problem] = []
    resolved: list[Baseline] = []
    seen: set[str] = set()
    for i, config in enumerate(settings.baselines):
        name = f"{config.provider}/{config.model}"
        if name in seen:
            problems.append(Problem(f"cost.baselines[{i}] {name}", "listed twice"))
            continue
        seen.add(name)
        found = entries.get((config.provider.lower(), config.model.lower()))
        try:
            resolved.append(_from_entries(name, config, found) if found else _from_genai(name, config))
        except CostError as exc:
            problems.append(Problem(f"cost.baselines[{i}] {name}", str(exc).removeprefix(f"{name}: ")))
    if problems:
        raise BaselineError("cannot price the API baselines", problems)
    return tuple(resolved)


def _from_genai(name: str, config: BaselineSettings) -> Baseline:
    try:
        found = calc_price(Usage(input_tokens=0, output_tokens=0), config.model, provider_id=config.provider)
    except LookupError as exc:
        raise CostError(
            f"{name}: genai-prices {GENAI_PRICES_VERSION} (bundled data) has no price for it ({exc}); "
            "expected a provider/model id it knows, e.g. openai/gpt-4o, or an entry in cost.price_file"
        ) from None
    model_info = found.model
    price_at, standard_of, tier_pricing = tier_prices(name, config, model_info.get_prices, model_info)
    labels = _genai_labels(model_info)
    return Baseline(
        id=name,
        provider=found.provider.id,
        model=config.model,
        resolved_model=model_info.id,
        discount=config.discount,
        source=f"genai-prices {GENAI_PRICES_VERSION} (bundled): {found.provider.id} {model_info.id}",
        as_of=None,
        price_at=price_at,
        discount_on=config.discount_on if config.discount_changes else None,
        price_label=lambda price: labels(standard_of(price)),
        token_ratio=config.token_ratio,
        tier=config.tier,
        tier_pricing=tier_pricing,
    )


TIER_CONTEXT: dict[str, dict[str, str]] = {
    "batch": {"processing": "batch"},
    "flex": {"service_tier": "flex"},
    "priority": {"service_tier": "priority"},
}
"""genai-prices' request context selecting each tier's price variants."""


def _tier_variants(model_info: ModelInfo | None, context: Mapping[str, str]) -> list[PriceVariant]:
    if model_info is None:
        return []
    return [v for v in model_info.price_variants or () if all(context.get(k) == x for k, x in v.when.items())
            and any(value is not None for value in vars(v.prices).values())]


def _variant_start(variant: PriceVariant) -> date | None:
    value = getattr(variant.constraint, "start_date", None)
    return value if isinstance(value, date) else None


def tier_prices(
    name: str, config: BaselineSettings, standard_at: Callable[[datetime], ModelPrice], model_info: ModelInfo | None,
) -> tuple[Callable[[datetime], ModelPrice], Callable[[ModelPrice], ModelPrice], str]:
    """The tier's price at a time, the standard price a tier price came from (for its label), and how
    the tier is priced in words. genai-prices' tier prices apply where they are in force; elsewhere
    the declared tier_discount scales the standard price. CostError: a tier priced by neither (at
    resolution, or for the hours before genai-prices' tier prices start)."""
    if config.tier == "standard":
        return standard_at, lambda price: price, "standard prices"
    tier = config.tier
    context = TIER_CONTEXT[tier]
    variants = _tier_variants(model_info, context)
    declared = config.tier_discount is not None or bool(config.tier_discount_changes)
    if not variants and not declared:
        raise CostError(f"{name}: tier {tier!r} is not priced: genai-prices {GENAI_PRICES_VERSION} has no {tier} "
                        f"prices for it; declare its discount off the standard price as tier_discount (e.g. 0.5 "
                        "for half price)")
    starts = [d for d in (_variant_start(v) for v in variants) if d is not None]
    first = min(starts) if len(starts) == len(variants) and starts else None
    words = []
    if variants:
        words.append(f"genai-prices {tier} prices" + (f" from {first}" if first else ""))
    if declared:
        amount = f"{config.tier_discount:%}" if config.tier_discount is not None else "none"
        words.append(f"declared tier_discount {amount}" + (" (dated changes)" if config.tier_discount_changes else "")
                     + (" where genai-prices has none" if variants else ""))
    cache: dict[tuple[int, object], ModelPrice] = {}
    standard_of: dict[int, ModelPrice] = {}

    def price_at(ts: datetime) -> ModelPrice:
        standard = standard_at(ts)
        active = tuple(i for i, v in enumerate(variants) if v.constraint is None or v.constraint.active(ts))
        key: tuple[int, object]
        if active and model_info is not None:
            key = (id(standard), active)
            price = cache.get(key)
            if price is None:
                price = cache[key] = model_info.get_prices(ts, context)
                standard_of[id(price)] = standard
            return price
        discount = config.tier_discount_on(ts.date())
        if discount is None:
            raise CostError(f"{name}: genai-prices has no {tier} price for it on {ts.date()} (its {tier} prices "
                            f"start {first}); declare tier_discount for the hours before")
        key = (id(standard), discount)
        price = cache.get(key)
        if price is None:
            price = cache[key] = scaled_price(standard, 1 - discount)
            standard_of[id(price)] = standard
        return price

    return price_at, lambda price: standard_of.get(id(price), price), "; ".join(words)


def scaled_price(price: ModelPrice, factor: Decimal) -> ModelPrice:
    """Every per-token rate of `price` (tiers included) times `factor`; per-request fees unchanged."""
    out: dict[str, Decimal | TieredPrices] = {}
    for key, value in vars(price).items():
        if key.startswith("_") or value is None:
            continue
        if key.endswith("_mtok"):
            if isinstance(value, TieredPrices):
                value = TieredPrices(base=value.base * factor,
                                     tiers=[Tier(start=t.start, price=t.price * factor) for t in value.tiers])
            else:
                value = value * factor
        out[key] = value
    return ModelPrice(**out)


def _genai_labels(model_info: ModelInfo) -> Callable[[ModelPrice], str]:
    """Names genai-prices' conditional prices: a time-of-day price and the plain price around it are
    "peak" and "off-peak" with their UTC hours (deepseek-chat: off-peak 16:30-00:30 UTC), a dated one
    "from <date>"; a model with one price has no names."""
    names: dict[int, str] = {}
    conditional = model_info.prices if isinstance(model_info.prices, list) else []
    plain = [c.prices for c in conditional if c.constraint is None]
    for c in conditional:
        constraint = c.constraint
        if constraint is None:
            continue
        start, end = getattr(constraint, "start_time", None), getattr(constraint, "end_time", None)
        if isinstance(start, time) and isinstance(end, time):
            dearer = bool(plain) and _input_rate(c.prices) > _input_rate(plain[0])
            names[id(c.prices)] = f"{'peak' if dearer else 'off-peak'} {start:%H:%M}-{end:%H:%M} UTC"
            if plain:
                names[id(plain[0])] = f"{'off-peak' if dearer else 'peak'} {end:%H:%M}-{start:%H:%M} UTC"
        elif getattr(constraint, "start_date", None) is not None:
            names[id(c.prices)] = f"from {getattr(constraint, 'start_date', '')}"
    return lambda price: names.get(id(price), "")


def _input_rate(price: ModelPrice) -> Decimal:
    value = price.input_mtok
    if isinstance(value, TieredPrices):
        return value.base
    return value if isinstance(value, Decimal) else Decimal(0)


def _model_price(entry: PriceEntry) -> ModelPrice:
    prices: dict[str, Decimal | TieredPrices] = {}
    for key, rate in entry.rates.items():
        tiers = [Tier(start=t.above_input_tokens, price=t.rates[key]) for t in entry.tiers if key in t.rates]
        prices[key] = TieredPrices(base=rate, tiers=tiers) if tiers else rate
    return ModelPrice(**prices)


def _from_entries(name: str, config: BaselineSettings, entries: tuple[PriceEntry, ...]) -> Baseline:
    """A price-file baseline: each dated entry applies from its effective_from on."""
    models = {id(e): _model_price(e) for e in entries}
    labels = {id(models[id(e)]): _entry_label(e) for e in entries} if len(entries) > 1 else {}
    current = entries[-1]

    def standard_at(ts: datetime) -> ModelPrice:
        return models[id(entry_on(entries, ts.date()))]

    price_at, standard_of, tier_pricing = tier_prices(name, config, standard_at, None)
    return Baseline(
        id=name,
        provider=current.provider,
        model=current.model,
        resolved_model=current.model,
        discount=config.discount,
        source=f"price file (as of {current.as_of.isoformat()}): {current.source}"
        + (f"; {len(entries)} dated entries" if len(entries) > 1 else ""),
        as_of=current.as_of,
        price_at=price_at,
        discount_on=config.discount_on if config.discount_changes else None,
        price_label=lambda price: labels.get(id(standard_of(price)), ""),
        token_ratio=config.token_ratio,
        tier=config.tier,
        tier_pricing=tier_pricing,
    )


def _entry_label(entry: PriceEntry) -> str:
    since = f"from {entry.effective_from}" if entry.effective_from else "before the dated entries"
    return f"price file {since} (as of {entry.as_of})"


def tier_starts(model_price: ModelPrice) -> tuple[int, ...]:
    """Every input-token threshold at which some rate of this price changes, ascending."""
    starts = {tier.start for value in vars(model_price).values() if isinstance(value, TieredPrices)
              for tier in value.tiers}
    return tuple(sorted(starts))


def band_of(starts: Sequence[int], input_tokens: int) -> int:
    """The number of thresholds a request's input exceeds (genai-prices: tier applies when input > start)."""
    return bisect.bisect_left(starts, input_tokens)


def flat_price(model_price: ModelPrice, starts: Sequence[int], band: int) -> tuple[ModelPrice, Decimal]:
    """The rates that apply to every request of a band, without tiers, and the per-1000-requests fee."""
    representative = 0 if band == 0 else starts[band - 1] + 1
    flat: dict[str, Decimal] = {}
    fee = Decimal(0)
    for key, value in vars(model_price).items():
        if key.startswith("_") or value is None:
            continue
        rate = value
        if isinstance(value, TieredPrices):
            rate = value.base
            for tier in reversed(value.tiers):
                if representative > tier.start:
                    rate = tier.price
                    break
        if key == _REQUEST_FEE_KEY:
            fee = rate
        else:
            flat[key] = rate
    return ModelPrice(**flat), fee


@dataclass
class _Group:
    model_price: ModelPrice
    band: int
    keep: Decimal = Decimal(1)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    requests: int = 0
    cache_write_tokens: int = 0


@dataclass
class _Groups:
    """Traffic summed per (price, tier band, discount factor), each price's tier starts kept once."""

    baseline: Baseline
    groups: dict[tuple[int, int, Decimal], _Group] = field(default_factory=dict)
    starts_of: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def starts(self, model_price: ModelPrice) -> tuple[int, ...]:
        key = id(model_price)
        starts = self.starts_of.get(key)
        if starts is None:
            starts = self.starts_of[key] = tier_starts(model_price)
        return starts

    def add(self, model_price: ModelPrice, band: int, keep: Decimal, input_tokens: int, output_tokens: int,
            cache_read_tokens: int, cache_write_tokens: int, requests: int) -> None:
        key = (id(model_price), band, keep)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(model_price, band, keep)
        group.input_tokens += input_tokens
        group.output_tokens += output_tokens
        group.cache_read_tokens += cache_read_tokens
        group.cache_write_tokens += cache_write_tokens
        group.requests += requests

    def total(self) -> ApiPrice:
        total = ApiPrice()
        for group in self.groups.values():
            total += _price_group(self.baseline, group, self.starts_of[id(group.model_price)])
        return total


def price_usages(baseline: Baseline, items: Iterable[tuple[datetime, TokenUsage]]) -> ApiPrice:
    """The API cost of requests, each priced at its own time and tier (exact, grouped for speed)."""
    acc = _Groups(baseline)
    for ts, usage in items:
        model_price = baseline.price_at(ts)
        band = band_of(acc.starts(model_price), usage.input_tokens)
        acc.add(model_price, band, baseline.factor_on(ts.date()), usage.input_tokens, usage.output_tokens,
                usage.cache_read_tokens, usage.cache_write_tokens, usage.requests)
    return acc.total()


def _rates(baseline: Baseline, model_price: ModelPrice, starts: Sequence[int], band: int
           ) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
    """Per-token input, cache-read, cache-write and output rates and the per-1000-requests fee of a
    (price, band). genai-prices' price of flat rates is linear in the token counts, so it is asked
    once per (price, band) and the rates are then applied exactly (Decimal) to every group."""
    key = (id(model_price), band)
    rates = baseline.rate_cache.get(key)
    if rates is None:
        flat, fee = flat_price(model_price, starts, band)
        mtok = 1_000_000
        try:
            plain = flat.calc_price(Usage(input_tokens=mtok, output_tokens=mtok))
            cached = flat.calc_price(Usage(input_tokens=mtok, output_tokens=0, cache_read_tokens=mtok))
            written = flat.calc_price(Usage(input_tokens=mtok, output_tokens=0, cache_write_tokens=mtok))
        except ValueError as exc:
            raise CostError(f"{baseline.id}: genai-prices could not price its rates: {exc}") from None
        rates = baseline.rate_cache[key] = (plain["input_price"] / mtok, cached["input_price"] / mtok,
                                            written["input_price"] / mtok, plain["output_price"] / mtok, fee)
    return rates


def _price_group(baseline: Baseline, group: _Group, starts: Sequence[int]) -> ApiPrice:
    """A group's price at its band's flat rates, times its factor (Baseline.factor_on: the share paid
    and the token ratio): the same result as calc_price request by request, without its cost."""
    input_rate, cache_rate, write_rate, output_rate, fee = _rates(baseline, group.model_price, starts, group.band)
    cache = min(group.cache_read_tokens, group.input_tokens)
    write = min(group.cache_write_tokens, group.input_tokens - cache)
    keep = group.keep
    return ApiPrice(((group.input_tokens - cache - write) * input_rate + cache * cache_rate
                     + write * write_rate) * keep,
                    group.output_tokens * output_rate * keep, fee * group.requests / 1000 * keep)


@dataclass(frozen=True, slots=True)
class EffectiveRates:
    """A baseline's USD per million self-hosted tokens at a time, below any long-context threshold:
    its tier's price, the negotiated discount and the token ratio applied."""

    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal
    cache_write_mtok: Decimal


def effective_rates(baseline: Baseline, at: datetime) -> EffectiveRates:
    """The rates one million measured tokens of each kind would pay at `at`. Raises CostError where
    the baseline has no price then (a tier before genai-prices prices it, undeclared)."""
    model_price = baseline.price_at(at)
    input_rate, cache_rate, write_rate, output_rate, _ = _rates(baseline, model_price, tier_starts(model_price), 0)
    factor = baseline.factor_on(at.date()) * MTOK
    return EffectiveRates(*((rate * factor).normalize() for rate in (input_rate, output_rate, cache_rate, write_rate)))



@dataclass(frozen=True, slots=True)
class GroupPricing:
    """The API cost of request groups, with the tokens priced at each named price."""

    price: ApiPrice
    tokens_by_price: tuple[tuple[str, int], ...]
    """(price name, tokens): "" is the plain price, else e.g. "off-peak 16:30-00:30 UTC"."""
    estimated_requests: int
    """Requests in a bucket a tier threshold falls inside: priced at the tier of the bucket's mean."""


def price_groups(baseline: Baseline, groups: Iterable[RequestGroup]) -> GroupPricing:
    """The API cost of stored request groups: each group at the price in force at its slot's start
    (slots are half hours: exact for prices changing on the half hour) and at its bucket's tier."""
    acc = _Groups(baseline)
    by_slot: dict[datetime, ModelPrice] = {}
    named: dict[str, int] = defaultdict(int)
    estimated = 0
    for g in groups:
        model_price = by_slot.get(g.slot)
        if model_price is None:
            model_price = by_slot[g.slot] = baseline.price_at(g.slot)
        starts = acc.starts(model_price)
        if any(g.input_min <= s < g.input_max for s in starts):
            band = band_of(starts, g.input_tokens // max(g.requests, 1))
            estimated += g.requests
        else:
            band = bisect.bisect_left(starts, g.input_min)
        acc.add(model_price, band, baseline.factor_on(g.slot.date()), g.input_tokens, g.output_tokens,
                g.cached_tokens, 0, g.requests)
        named[baseline.price_label(model_price)] += g.input_tokens + g.output_tokens
    return GroupPricing(acc.total(), tuple(sorted(named.items())), estimated)


@dataclass(frozen=True, slots=True)
class HistogramPricing:
    price: ApiPrice
    method: str
    """histograms (per-request sizes estimated from bucket counts) or counters (totals only)."""


def price_histograms(
    baseline: Baseline,
    at: datetime,
    prompt: HistogramSnapshot | None,
    totals: TokenUsage,
) -> HistogramPricing:
    """API cost of one window's traffic known only from /metrics.

    With a prompt-size histogram, requests are split into price tiers by their estimated input
    size (linear within buckets); output tokens are spread over tiers in proportion to requests
    (the joint distribution is not scraped). Without one, all traffic is priced at the tier of the
    mean request. Prices are those in force at `at` (the middle of the window)."""
    model_price = baseline.price_at(at)
    keep = baseline.factor_on(at.date())
    starts = tier_starts(model_price)
    requests = max(totals.requests, 0)
    if prompt is not None and prompt.count > 0 and starts:
        bands = hist.split_by_thresholds(prompt, starts)
        method = "histograms"
    else:
        mean = totals.input_tokens / requests if requests else 0
        bands = [(0.0, 0.0)] * (len(starts) + 1)
        bands[band_of(starts, int(mean))] = (float(requests), float(totals.input_tokens))
        method = "histograms" if prompt is not None and prompt.count > 0 else "counters"
    n = sum(r for r, _ in bands) or 1.0
    estimated_input = sum(t for _, t in bands) or 1.0
    total = ApiPrice()
    input_left, output_left, cached_left, requests_left = (
        totals.input_tokens, totals.output_tokens, totals.cache_read_tokens, requests)
    for band, (band_requests, band_input) in enumerate(bands):
        last = band == len(bands) - 1
        if last:
            i_tok, o_tok, c_tok, r = input_left, output_left, cached_left, requests_left
        else:
            i_tok = round(totals.input_tokens * band_input / estimated_input)
            o_tok = round(totals.output_tokens * band_requests / n)
            c_tok = round(totals.cache_read_tokens * band_input / estimated_input)
            r = round(requests * band_requests / n)
        input_left -= i_tok
        output_left -= o_tok
        cached_left -= c_tok
        requests_left -= r
        if i_tok <= 0 and o_tok <= 0:
            continue
        group = _Group(model_price, band, keep, max(i_tok, 0), max(o_tok, 0), max(min(c_tok, i_tok), 0), max(r, 0))
        total += _price_group(baseline, group, starts)
    return HistogramPricing(total, method)
