"""Showback: who the self-hosted cost went to, by model, team, caller or route (pure).

Each hour's cost is shared among the request groups of that hour in proportion to their weighted
tokens (input + cost.output_token_weight x output, the rule that splits input and output $/Mtok),
in whole micro-dollars by largest remainder, so the shares of every hour (and so of any period)
add up exactly to its total. Two bases, both adding up to the bill (allocation basis):

- allocation: the hour's whole cost (GPU held, energy, overhead) is shared by tokens; an hour with
  GPUs held and no tokens goes to the idle line.
- usage: only the busy GPU share, energy and overhead are shared; idle GPU time (the allocation GPU
  line minus the usage one) is its own line, as OpenCost reports idle cost.

Tokens the engine served that no proxy record accounts for (clients calling the engine directly),
and hours whose request groups were not kept, are the unattributed line."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

from agent.cost.measures import RequestGroup
from agent.cost.pricing import LedgerRow
from agent.cost.units import MONTH_SECONDS, dec

Dimension = Literal["model", "team", "caller", "route"]
DIMENSIONS: tuple[Dimension, ...] = ("model", "team", "caller", "route")
IDLE = "(idle GPU)"
UNATTRIBUTED = "(unattributed)"
UNASSIGNED = "(no team)"
_MICRO = Decimal("0.000001")


def team_of(group: RequestGroup, teams: Mapping[str, str]) -> str:
    """The team header's value (mapped through cost.teams when listed), else the caller's team."""
    if group.team:
        return teams.get(group.team, group.team)
    return teams.get(group.caller, UNASSIGNED)


def key_of(group: RequestGroup, by: Dimension, teams: Mapping[str, str]) -> str:
    if by == "team":
        return team_of(group, teams)
    value = getattr(group, by)
    return str(value) or "(none)"


def split_micros(total: Decimal, weights: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """`total` (USD, 6 decimals) shared by weight in whole micro-dollars, remainders to the largest
    fractions (ties by key): the parts add up to `total` exactly."""
    micros = int((total / _MICRO).to_integral_value())
    weight_sum = sum(weights.values(), Decimal(0))
    if weight_sum <= 0 or not weights:
        return {}
    floors: dict[str, int] = {}
    fractions: list[tuple[Decimal, str]] = []
    for key, w in weights.items():
        exact = Decimal(micros) * w / weight_sum
        whole = int(exact.to_integral_value(rounding=ROUND_FLOOR))
        floors[key] = whole
        fractions.append((exact - whole, key))
    left = micros - sum(floors.values())
    for _, key in sorted(fractions, key=lambda f: (-f[0], f[1]))[:left]:
        floors[key] += 1
    return {key: Decimal(n) * _MICRO for key, n in floors.items()}


@dataclass(frozen=True, slots=True)
class Share:
    key: str
    allocation_usd: Decimal
    usage_usd: Decimal
    tokens: int
    requests: int


@dataclass(frozen=True, slots=True)
class Attribution:
    """Cost by one dimension; the shares (idle and unattributed lines included) add up to the total."""

    by: Dimension
    shares: tuple[Share, ...]
    total_usd: Decimal
    """The allocation-basis total of the hours attributed (the bill)."""


def attribute(rows: Iterable[LedgerRow], groups: Mapping[tuple[str, datetime], Sequence[RequestGroup]],
              by: Dimension, teams: Mapping[str, str], output_weight: Decimal) -> Attribution:
    alloc: dict[str, Decimal] = defaultdict(Decimal)
    usage: dict[str, Decimal] = defaultdict(Decimal)
    tokens: dict[str, int] = defaultdict(int)
    requests: dict[str, int] = defaultdict(int)
    total = Decimal(0)
    for row in rows:
        hour_total = row.gpu_cost_usd + row.energy_cost_usd + row.overhead_usd
        total += hour_total
        idle = row.gpu_cost_usd - row.usage_gpu_cost_usd
        weights: dict[str, Decimal] = defaultdict(Decimal)
        attributed_weight = Decimal(0)
        attributed_tokens = 0
        for g in groups.get((row.host, row.hour), ()):
            key = key_of(g, by, teams)
            w = dec(g.input_tokens) + output_weight * dec(g.output_tokens)
            weights[key] += w
            attributed_weight += w
            attributed_tokens += g.input_tokens + g.output_tokens
            tokens[key] += g.input_tokens + g.output_tokens
            requests[key] += g.requests
        rest = dec(row.prompt_tokens) + output_weight * dec(row.generation_tokens) - attributed_weight
        if rest > 0:
            weights[UNATTRIBUTED] += rest
            tokens[UNATTRIBUTED] += max(row.prompt_tokens + row.generation_tokens - attributed_tokens, 0)
        weights = {k: w for k, w in weights.items() if w > 0}
        if not weights:
            alloc[IDLE] += hour_total
            usage[IDLE] += hour_total
            continue
        for key, part in split_micros(hour_total, weights).items():
            alloc[key] += part
        usage[IDLE] += idle
        for key, part in split_micros(hour_total - idle, weights).items():
            usage[key] += part
    present = [k for k in set(alloc) | set(usage) if alloc.get(k) or usage.get(k) or tokens.get(k)]
    keys = sorted(present, key=lambda k: (k in (IDLE, UNATTRIBUTED), -alloc.get(k, Decimal(0)), k))
    shares = tuple(Share(k, alloc.get(k, Decimal(0)), usage.get(k, Decimal(0)), tokens.get(k, 0), requests.get(k, 0))
                   for k in keys)
    return Attribution(by, shares, total)


@dataclass(frozen=True, slots=True)
class TeamBudget:
    """A team's month: budget, spend so far and the month's projected spend at the current pace."""

    team: str
    budget_usd: Decimal | None
    month_to_date_usd: Decimal
    run_rate_usd: Decimal
    """Month-to-date spend / elapsed share of the month (the month's spend if the pace holds)."""

    @property
    def over_budget(self) -> bool | None:
        return None if self.budget_usd is None else self.run_rate_usd > self.budget_usd


def team_budgets(month_to_date: Attribution, budgets: Mapping[str, Decimal], elapsed_seconds: float,
                 month_seconds: float = MONTH_SECONDS) -> tuple[TeamBudget, ...]:
    """Per team (every budgeted one, and every one that spent): budget, month to date, run rate."""
    spent = {s.key: s.allocation_usd for s in month_to_date.shares if s.key not in (IDLE, UNATTRIBUTED)}
    scale = dec(month_seconds) / dec(elapsed_seconds) if elapsed_seconds > 0 else Decimal(0)
    return tuple(TeamBudget(team, budgets.get(team), spent.get(team, Decimal(0)),
                            spent.get(team, Decimal(0)) * scale)
                 for team in sorted(set(spent) | set(budgets)))
