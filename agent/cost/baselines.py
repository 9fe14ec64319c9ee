"""API price baselines: what the same traffic would have cost on a managed API.

Prices come from genai-prices' bundled data (offline; its update functions are never called) or
from the local price file (agent.cost.pricefile), which wins for the models it lists. Traffic is
priced request by request: a request's input size picks its price tier (the providers' cliff
model: above the threshold, all its tokens pay the tier rate), so requests are grouped by
(price in force at their timestamp, tier) and each group is priced at that tier's flat rates,
which equals the sum of per-request prices exactly."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from importlib.metadata import version

from genai_prices import Usage, calc_price
from genai_prices.types import ModelInfo, ModelPrice, Tier, TieredPrices

from agent.config import BaselineSettings, CostSettings
from agent.cost import histograms as hist
from agent.cost.measures import RequestGroup
from agent.cost.pricefile import PriceEntry, entry_on, load_price_file
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
    rate_cache: dict[tuple[int, int], tuple[Decimal, Decimal, Decimal, Decimal]] = field(
        default_factory=dict, compare=False, repr=False)
    """Per-token rates of each (price, tier band) met so far: see _price_group."""
    """Names a time-of-day or dated price ("off-peak 16:30-00:30 UTC"); "" for the plain price."""

    def keep_on(self, day: date) -> Decimal:
        """The share of the list price paid on `day` (1 - discount)."""
        return 1 - (self.discount_on(day) if self.discount_on is not None else self.discount)


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
    return Baseline(
        id=name,
        provider=found.provider.id,
        model=config.model,
        resolved_model=model_info.id,
        discount=config.discount,
        source=f"genai-prices {GENAI_PRICES_VERSION} (bundled): {found.provider.id} {model_info.id}",
        as_of=None,
        price_at=model_info.get_prices,
        discount_on=config.discount_on if config.discount_changes else None,
        price_label=_genai_labels(model_info),
    )


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

    def price_at(ts: datetime) -> ModelPrice:
        return models[id(entry_on(entries, ts.date()))]

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
        price_label=lambda price: labels.get(id(price), ""),
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


def price_usages(baseline: Baseline, items: Iterable[tuple[datetime, TokenUsage]]) -> ApiPrice:
    """The API cost of requests, each priced at its own time and tier (exact, grouped for speed)."""
    groups: dict[tuple[int, int, Decimal], _Group] = {}
    starts_of: dict[int, tuple[int, ...]] = {}
    for ts, usage in items:
        model_price = baseline.price_at(ts)
        key_price = id(model_price)
        starts = starts_of.get(key_price)
        if starts is None:
            starts = starts_of[key_price] = tier_starts(model_price)
        band = band_of(starts, usage.input_tokens)
        keep = baseline.keep_on(ts.date())
        group = groups.get((key_price, band, keep))
        if group is None:
            group = groups[(key_price, band, keep)] = _Group(model_price, band, keep)
        group.input_tokens += usage.input_tokens
        group.output_tokens += usage.output_tokens
        group.cache_read_tokens += usage.cache_read_tokens
        group.requests += usage.requests
    total = ApiPrice()
    for group in groups.values():
        total += _price_group(baseline, group, starts_of[id(group.model_price)])
    return total


def _price_group(baseline: Baseline, group: _Group, starts: Sequence[int]) -> ApiPrice:
    """A group's price at its band's flat rates. genai-prices' price of flat rates is linear in the
    token counts, so it is asked once per (price, band) for the per-token rates, which are then
    applied exactly (Decimal) to every group: the same result as calc_price, without its cost."""
    key = (id(group.model_price), group.band)
    rates = baseline.rate_cache.get(key)
    if rates is None:
        flat, fee = flat_price(group.model_price, starts, group.band)
        mtok = 1_000_000
        try:
            plain = flat.calc_price(Usage(input_tokens=mtok, output_tokens=mtok))
            cached = flat.calc_price(Usage(input_tokens=mtok, output_tokens=0, cache_read_tokens=mtok))
        except ValueError as exc:
            raise CostError(f"{baseline.id}: genai-prices could not price its rates: {exc}") from None
        rates = baseline.rate_cache[key] = (plain["input_price"] / mtok, cached["input_price"] / mtok,
                                            plain["output_price"] / mtok, fee)
    input_rate, cache_rate, output_rate, fee = rates
    cache = min(group.cache_read_tokens, group.input_tokens)
    keep = group.keep
    return ApiPrice(((group.input_tokens - cache) * input_rate + cache * cache_rate) * keep,
                    group.output_tokens * output_rate * keep, fee * group.requests / 1000 * keep)


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
    acc: dict[tuple[int, int, Decimal], _Group] = {}
    starts_of: dict[int, tuple[int, ...]] = {}
    by_slot: dict[datetime, ModelPrice] = {}
    named: dict[str, int] = defaultdict(int)
    estimated = 0
    for g in groups:
        model_price = by_slot.get(g.slot)
        if model_price is None:
            model_price = by_slot[g.slot] = baseline.price_at(g.slot)
        key_price = id(model_price)
        starts = starts_of.get(key_price)
        if starts is None:
            starts = starts_of[key_price] = tier_starts(model_price)
        if any(g.input_min <= s < g.input_max for s in starts):
            band = band_of(starts, g.input_tokens // max(g.requests, 1))
            estimated += g.requests
        else:
            band = bisect.bisect_left(starts, g.input_min)
        keep = baseline.keep_on(g.slot.date())
        group = acc.get((key_price, band, keep))
        if group is None:
            group = acc[(key_price, band, keep)] = _Group(model_price, band, keep)
        group.input_tokens += g.input_tokens
        group.output_tokens += g.output_tokens
        group.cache_read_tokens += g.cached_tokens
        group.requests += g.requests
        named[baseline.price_label(model_price)] += g.input_tokens + g.output_tokens
    total = ApiPrice()
    for group in acc.values():
        total += _price_group(baseline, group, starts_of[id(group.model_price)])
    return GroupPricing(total, tuple(sorted(named.items())), estimated)


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
    keep = baseline.keep_on(at.date())
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
