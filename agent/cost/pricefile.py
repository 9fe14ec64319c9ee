"""The local price file: API prices that override (or add to) genai-prices' bundled data.

TOML, one [[prices]] table per model; every entry says when and where the price was read:

    [[prices]]
    provider = "openai"
    model = "gpt-4o"
    input_mtok = "2.50"          # USD per million input tokens
    output_mtok = "10.00"        # USD per million output tokens
    cache_read_mtok = "1.25"     # optional: cached input; absent means cached input pays input_mtok
    as_of = 2026-01-15           # TOML date (or "2026-01-15")
    source = "https://openai.com/api/pricing, read by finance"
    effective_from = 2026-03-01  # optional: the price applies from this day (00:00 UTC) on; list
                                 # several entries for one model to record price changes

    [[prices.tiers]]             # optional: a request whose input exceeds the threshold pays
    above_input_tokens = 200000  # these rates for all its tokens (the providers' cliff model)
    input_mtok = "6"
    output_mtok = "22.5"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from agent.errors import FieldSpecError, Problem

RATE_KEYS: tuple[str, ...] = ("input_mtok", "output_mtok", "cache_read_mtok")
ENTRY_KEYS = frozenset({"provider", "model", "as_of", "source", "tiers", "effective_from", *RATE_KEYS})
TIER_KEYS = frozenset({"above_input_tokens", *RATE_KEYS})


@dataclass(frozen=True, slots=True)
class PriceTier:
    above_input_tokens: int
    rates: Mapping[str, Decimal]


@dataclass(frozen=True, slots=True)
class PriceEntry:
    provider: str
    model: str
    rates: Mapping[str, Decimal]
    """USD per million tokens by genai-prices price key (input_mtok, output_mtok, cache_read_mtok)."""
    tiers: tuple[PriceTier, ...]
    as_of: date
    source: str
    effective_from: date | None = None
    """From this day on (None: from the beginning, until the next entry of the model)."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.provider.lower(), self.model.lower())


def entry_on(entries: tuple[PriceEntry, ...], day: date) -> PriceEntry:
    """The entry in force on `day`: the latest effective_from <= day; before every dated entry, the
    undated one, or else the earliest (the report says an entry was applied before its date)."""
    chosen = entries[0]
    for entry in entries:
        if entry.effective_from is None or entry.effective_from <= day:
            chosen = entry
    return chosen


def load_price_file(path: str | Path) -> dict[tuple[str, str], tuple[PriceEntry, ...]]:
    """Entries keyed by (provider, model), lower case, oldest effective_from first. Raises
    FieldSpecError listing every problem."""
    source = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FieldSpecError(source, [Problem(source, f"cannot read the price file: {exc.strerror}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise FieldSpecError(source, [Problem(source, f"expected TOML: {exc}")]) from None
    return parse_price_data(data, source)


def parse_price_data(data: Mapping[str, Any], source: str) -> dict[tuple[str, str], tuple[PriceEntry, ...]]:
    problems: list[Problem] = []
    unknown = set(data) - {"prices"}
    if unknown:
        problems.append(Problem(source, f"unknown top-level keys {sorted(unknown)}; expected [[prices]] tables"))
    raw_entries = data.get("prices", [])
    if not isinstance(raw_entries, list):
        raise FieldSpecError(source, [*problems, Problem("prices", "expected an array of tables [[prices]]")])
    entries: dict[tuple[str, str], list[PriceEntry]] = {}
    for i, raw in enumerate(raw_entries):
        where = f"prices[{i}]"
        if not isinstance(raw, Mapping):
            problems.append(Problem(where, "expected a table"))
            continue
        entry = _entry(raw, where, problems)
        if entry is None:
            continue
        same = entries.setdefault(entry.key, [])
        if any(e.effective_from == entry.effective_from for e in same):
            when = f" effective from {entry.effective_from}" if entry.effective_from else " without effective_from"
            problems.append(Problem(where, f"duplicate entry for {entry.provider}/{entry.model}{when}"))
        same.append(entry)
    if problems:
        raise FieldSpecError(source, problems)
    return {key: tuple(sorted(group, key=lambda e: (e.effective_from is not None, e.effective_from or e.as_of)))
            for key, group in entries.items()}


def _entry(raw: Mapping[str, Any], where: str, problems: list[Problem]) -> PriceEntry | None:
    before = len(problems)
    for key in sorted(set(raw) - ENTRY_KEYS):
        problems.append(Problem(f"{where}.{key}", f"unknown key; expected one of {sorted(ENTRY_KEYS)}"))
    names: dict[str, str] = {}
    for key in ("provider", "model", "source"):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(Problem(f"{where}.{key}", "expected a non-empty string"))
        else:
            names[key] = value.strip()
    as_of = _date(raw.get("as_of"), f"{where}.as_of", problems)
    effective_from = (_date(raw["effective_from"], f"{where}.effective_from", problems)
                      if "effective_from" in raw else None)
    rates = _rates(raw, where, problems, required=("input_mtok", "output_mtok"))
    tiers: list[PriceTier] = []
    raw_tiers = raw.get("tiers", [])
    if not isinstance(raw_tiers, list):
        problems.append(Problem(f"{where}.tiers", "expected an array of tables [[prices.tiers]]"))
        raw_tiers = []
    for j, raw_tier in enumerate(raw_tiers):
        tier_where = f"{where}.tiers[{j}]"
        if not isinstance(raw_tier, Mapping):
            problems.append(Problem(tier_where, "expected a table"))
            continue
        for key in sorted(set(raw_tier) - TIER_KEYS):
            problems.append(Problem(f"{tier_where}.{key}", f"unknown key; expected one of {sorted(TIER_KEYS)}"))
        threshold = raw_tier.get("above_input_tokens")
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0:
            problems.append(Problem(f"{tier_where}.above_input_tokens", "expected a non-negative integer"))
            continue
        tier_rates = _rates(raw_tier, tier_where, problems, required=())
        for key in tier_rates:
            if key not in rates:
                problems.append(Problem(f"{tier_where}.{key}", "a tier can only change a rate the entry sets"))
        tiers.append(PriceTier(threshold, tier_rates))
    if len(problems) > before or as_of is None:
        return None
    ordered = tuple(sorted(tiers, key=lambda t: t.above_input_tokens))
    return PriceEntry(names["provider"], names["model"], rates, ordered, as_of, names["source"], effective_from)


def _date(value: object, where: str, problems: list[Problem]) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    problems.append(Problem(where, f"expected a date like 2026-01-15, got {value!r}"))
    return None


def _rates(
    raw: Mapping[str, Any], where: str, problems: list[Problem], required: tuple[str, ...]
) -> dict[str, Decimal]:
    rates: dict[str, Decimal] = {}
    for key in RATE_KEYS:
        if key not in raw:
            if key in required:
                problems.append(Problem(f"{where}.{key}", "missing: expected USD per million tokens"))
            continue
        value = raw[key]
        try:
            rate = Decimal(str(value)) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
        except InvalidOperation:
            rate = None
        if rate is None or not rate.is_finite() or rate < 0:
            problems.append(Problem(f"{where}.{key}",
                                    f"expected a non-negative number of USD per million tokens, got {value!r}"))
            continue
        rates[key] = rate
    return rates
