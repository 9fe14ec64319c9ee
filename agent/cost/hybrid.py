"""The hybrid optimum: how many GPUs to self-host for the base load, the overflow on an API (pure).

Model (docs/cost.md, "Hybrid"): the demand is tokens per hour over the period (each entry one
hour), scaled to a 730 h month. k GPUs serve up to k x capacity x 3600 tokens in an hour; what an
hour asks beyond that goes to the API at the baseline's price per token. Per month a mix costs
    k x G + O (when k > 0) + m x self-hosted tokens + p x API tokens
(G: one GPU's monthly cost on the allocation basis, O: the MLOps overhead, m: energy per token
when it is paid per kWh, p: the baseline's price per token of the measured traffic).

- Self-host only holds the GPUs the peak hour needs at the capacity (all tokens self-hosted).
- Hybrid searches k from 0 to that count. The dispatcher fills the GPUs first unless the API
  costs less per token than the energy alone (p <= m), then only regulated traffic stays home.
- Regulated tokens (cost.regulated_data) are never sent to the API: a k whose capacity cannot
  hold an hour's regulated tokens is not a candidate, and API only is not an option at all.
So the hybrid cost never exceeds either pure option, and more capacity never raises it."""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from agent.cost.units import dec

MixKind = Literal["api_only", "self_only", "hybrid"]
CapacityBasis = Literal["measured", "utilization"]
_EPS = 1e-9
"""Relative slack when a demand is divided by the capacity (400 / 100 is 4 GPUs, not 5)."""


@dataclass(frozen=True, slots=True)
class MixCost:
    """One way to serve the period's demand, per month."""

    kind: MixKind
    gpus: int
    usd_per_month: Decimal
    self_tokens_per_month: float
    api_tokens_per_month: float

    @property
    def api_share(self) -> float:
        """Share of the tokens that would go to the API (0 without demand)."""
        total = self.self_tokens_per_month + self.api_tokens_per_month
        return self.api_tokens_per_month / total if total > 0 else 0.0


@dataclass(frozen=True, slots=True)
class HybridCosts:
    """Unit costs of one scope, per month (money) and per token."""

    gpu_usd_per_month: Decimal
    """One GPU held for a month (allocation basis)."""
    overhead_usd_per_month: Decimal
    """Paid whenever at least one GPU is held."""
    energy_usd_per_token: Decimal
    today_usd_per_month: Decimal | None
    """Today's setup (the run rate), for the saving."""


@dataclass(frozen=True, slots=True)
class HybridResult:
    baseline: str
    capacity_tokens_per_s_per_gpu: float
    capacity_basis: CapacityBasis
    peak_tokens_per_hour: float
    api_only: MixCost | None
    """None when regulated traffic forbids it."""
    self_only: MixCost
    best: MixCost
    saving_usd_per_month: Decimal | None
    """Today's monthly cost minus the best mix's (positive: the mix is cheaper)."""
    reasons: tuple[str, ...]


def gpus_for(tokens_per_hour: float, capacity_tokens_per_s: float) -> int:
    """GPUs needed to serve one hour's tokens at the capacity per GPU."""
    if tokens_per_hour <= 0:
        return 0
    need = tokens_per_hour / (capacity_tokens_per_s * 3600.0)
    return max(math.ceil(need * (1 - _EPS)), 1)


class _Served:
    """sum over hours of min(d_h, cap): sorted demand with prefix sums, O(log H) per capacity."""

    def __init__(self, demand: Sequence[float]) -> None:
        self.sorted = sorted(demand)
        self.prefix = [0.0, *itertools.accumulate(self.sorted)]

    def up_to(self, cap: float) -> float:
        i = bisect.bisect_right(self.sorted, cap)
        return self.prefix[i] + cap * (len(self.sorted) - i)


def hybrid_optimum(
    baseline: str,
    demand: Sequence[float],
    capacity_tokens_per_s_per_gpu: float,
    api_usd_per_token: Decimal,
    costs: HybridCosts,
    regulated: Sequence[float] | None = None,
    capacity_basis: CapacityBasis = "utilization",
    month_hours: float = 730.0,
) -> HybridResult:
    """API only, self-host only and the cheapest mix against one baseline.

    `demand`: tokens per hour over the period; `regulated`: the part of each hour's tokens that
    must stay self-hosted (same length). Raises ValueError on a non-positive capacity, negative
    demand or a regulated series that does not match."""
    if not capacity_tokens_per_s_per_gpu > 0 or not math.isfinite(capacity_tokens_per_s_per_gpu):
        raise ValueError(f"capacity_tokens_per_s_per_gpu: expected a positive number, got "
                         f"{capacity_tokens_per_s_per_gpu}")
    if any(d < 0 for d in demand):
        raise ValueError("demand: expected tokens per hour >= 0")
    reg = list(regulated) if regulated is not None else [0.0] * len(demand)
    if len(reg) != len(demand) or any(r < 0 or r > d * (1 + _EPS) for r, d in zip(reg, demand, strict=True)):
        raise ValueError("regulated: expected one value per demand hour, each between 0 and that hour's demand")
    scale = month_hours / len(demand) if demand else 0.0
    total = sum(demand) * scale
    regulated_total = sum(reg) * scale
    per_hour = capacity_tokens_per_s_per_gpu * 3600.0
    peak = max(demand, default=0.0)
    k_self = gpus_for(peak, capacity_tokens_per_s_per_gpu)
    k_min = gpus_for(max(reg, default=0.0), capacity_tokens_per_s_per_gpu)
    p, m, g, o = api_usd_per_token, costs.energy_usd_per_token, costs.gpu_usd_per_month, costs.overhead_usd_per_month
    fill = p > m  # fill the GPUs unless the API is cheaper per token than the energy alone
    served = _Served(demand)

    def mix(k: int, kind: MixKind, route: bool) -> MixCost:
        own = (served.up_to(k * per_hour) * scale if (fill or not route) else regulated_total) if k else 0.0
        own = min(max(own, regulated_total), total)
        api = max(total - own, 0.0)
        usd = dec(k) * g + (o if k else Decimal(0)) + m * dec(own) + p * dec(api)
        return MixCost(kind, k, usd, own, api)

    api_only = mix(0, "api_only", True) if regulated_total <= 0 else None
    self_only = mix(k_self, "self_only", False)
    best = min((mix(k, "hybrid", True) for k in range(k_min, k_self + 1)),
               key=lambda c: (c.usd_per_month, c.gpus))
    today = costs.today_usd_per_month
    saving = today - best.usd_per_month if today is not None else None
    reasons = [_sentence(baseline, best, api_only, self_only, saving)]
    if regulated_total > 0:
        reasons.append("Regulated traffic stays self-hosted: API only is not an option, and the mix keeps "
                       f"at least {k_min} GPU(s) for it.")
    return HybridResult(baseline, capacity_tokens_per_s_per_gpu, capacity_basis, peak, api_only, self_only,
                        best, saving, tuple(reasons))


def _sentence(baseline: str, best: MixCost, api_only: MixCost | None, self_only: MixCost,
              saving: Decimal | None) -> str:
    if best.gpus == 0:
        head = f"Against {baseline} the cheapest is API only"
    elif best.api_tokens_per_month <= 0:
        head = f"Against {baseline} the cheapest is self-hosting everything on {best.gpus} GPU(s)"
    else:
        head = (f"Against {baseline} the cheapest is {best.gpus} GPU(s) for the base load with "
                f"{best.api_share:.0%} of the tokens on the API")
    cost = f" ({_usd(best.usd_per_month)}/month"
    if saving is not None:
        cost += f", {_usd(abs(saving))}/month {'less' if saving >= 0 else 'more'} than today"
    return head + cost + ")."


def _usd(value: Decimal) -> str:
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"
