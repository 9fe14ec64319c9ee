"""The camp verdict: does self-hosting still beat each API baseline at the measured run rate? (pure)

Model (docs/cost.md): per month, self-hosting costs F + m·V, where F is fixed (the GPUs held, on
the allocation basis, and the MLOps overhead), m the marginal cost per token (the energy, when it
is paid per kWh) and V the tokens served. The API would cost p·V (p: the baseline's price of the
measured traffic per token). Savings = (p - m)·V - F; break-even V* = F / (p - m)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from agent.cost.units import MTOK

State = Literal["holds", "at_risk", "api_cheaper", "unknown"]
STATE_WORDS: dict[State, str] = {
    "holds": "holds", "at_risk": "at risk", "api_cheaper": "API cheaper", "unknown": "unknown",
}


@dataclass(frozen=True, slots=True)
class RunRate:
    """Monthly figures extrapolated from the measured window (a month is 730 h of the GPUs held)."""

    tokens_per_month: Decimal
    fixed_usd_per_month: Decimal
    """GPU line on the allocation basis + overhead."""
    marginal_usd_per_month: Decimal
    """Energy paid per kWh (zero when it is in the hourly rate)."""
    utilization: float | None
    """Busy share of the GPU time observed (0..1)."""

    @property
    def self_hosted_usd_per_month(self) -> Decimal:
        return self.fixed_usd_per_month + self.marginal_usd_per_month

    def __add__(self, other: RunRate) -> RunRate:
        util: float | None
        if self.utilization is None or other.utilization is None:
            util = self.utilization if other.utilization is None else other.utilization
        else:
            # Weight by fixed cost, a stand-in for the GPU capacity each part holds.
            total = self.fixed_usd_per_month + other.fixed_usd_per_month
            util = (float((self.fixed_usd_per_month * Decimal(repr(self.utilization))
                           + other.fixed_usd_per_month * Decimal(repr(other.utilization))) / total)
                    if total > 0 else (self.utilization + other.utilization) / 2)
        return RunRate(self.tokens_per_month + other.tokens_per_month,
                       self.fixed_usd_per_month + other.fixed_usd_per_month,
                       self.marginal_usd_per_month + other.marginal_usd_per_month, util)


@dataclass(frozen=True, slots=True)
class Verdict:
    baseline: str
    state: State
    self_hosted_usd_per_month: Decimal
    api_usd_per_month: Decimal | None
    savings_usd_per_month: Decimal | None
    """API cost minus self-hosted cost: negative is a loss."""
    breakeven_tokens_per_month: Decimal | None
    """None when unknown (no traffic to price) or unreachable (see breakeven_reachable)."""
    breakeven_reachable: bool
    utilization: float | None
    utilization_needed: float | None
    headroom: float | None
    """Share by which monthly traffic can fall before the API is cheaper (negative: must grow)."""
    reasons: tuple[str, ...]
    gpus_needed: float | None = None
    """GPUs' worth of measured capacity the break-even volume needs (None on the utilization basis)."""
    capacity_basis: str = "utilization"
    """What utilization_needed rests on: "measured" capacity at the SLOs, or NVML "utilization" (linear)."""

    @property
    def holds(self) -> bool | None:
        return None if self.state == "unknown" else self.state in ("holds", "at_risk")


def decide(
    baseline: str,
    run_rate: RunRate,
    api_usd_per_month: Decimal | None,
    margin: float,
    regulated: bool = False,
    notes: tuple[str, ...] = (),
    capacity_tokens_per_gpu_month: Decimal | None = None,
    gpus: int = 0,
) -> Verdict:
    """The verdict against one baseline. `api_usd_per_month` is the baseline's price of the same
    monthly traffic (None when it could not be priced). `notes` (data gaps) are appended as reasons.
    With `capacity_tokens_per_gpu_month` (measured capacity) and the `gpus` held, "utilization
    needed" is the break-even volume over what those GPUs serve at the SLOs, not a linear scale of
    the NVML utilization."""
    v, f, e = run_rate.tokens_per_month, run_rate.fixed_usd_per_month, run_rate.marginal_usd_per_month
    own = f + e
    tail = _tail(regulated, notes)
    if v <= 0:
        if own > 0:
            return Verdict(baseline, "api_cheaper", own, Decimal(0), -own, None, False, run_rate.utilization,
                           None, None, (f"No tokens were served, yet self-hosting cost {_usd(own)}/month: "
                                        f"{baseline} would have cost nothing.", *tail))
        return Verdict(baseline, "unknown", own, None, None, None, False, run_rate.utilization, None, None,
                       ("Nothing was measured: no tokens and no cost.", *tail))
    if api_usd_per_month is None:
        return Verdict(baseline, "unknown", own, None, None, None, False, run_rate.utilization, None, None,
                       (f"The traffic could not be priced on {baseline}.", *tail))
    a = api_usd_per_month
    savings = a - own
    spread = a - e  # (p - m)·V: what each month's traffic earns back over the marginal cost
    reachable = spread > 0 or f == 0
    breakeven = (f * v / spread) if spread > 0 else (Decimal(0) if f == 0 else None)
    if savings < 0:
        state: State = "api_cheaper"
    elif spread < f * (1 + Decimal(repr(margin))):
        state = "at_risk"
    else:
        state = "holds"
    util = run_rate.utilization
    needed = (util * float(breakeven / v)) if util is not None and breakeven is not None else None
    headroom = float(1 - breakeven / v) if breakeven is not None else None
    reasons = [_price_sentence(baseline, state, savings, v, breakeven, margin)]
    cap = capacity_tokens_per_gpu_month
    if cap is not None and cap > 0 and gpus > 0 and breakeven is not None:
        gpus_needed = float(breakeven / cap)
        needed = gpus_needed / gpus
        reasons.append(f"On the measured capacity at the SLOs, break-even needs {gpus_needed:,.2f} GPUs' worth of "
                       f"throughput, {needed:.0%} of the {gpus} held"
                       + (": more than they can serve." if needed > 1 else "."))
        return Verdict(baseline, state, own, a, savings, breakeven, reachable, util, needed, headroom,
                       (*reasons, *tail), gpus_needed, "measured")
    if needed is not None and util is not None:
        if needed > 1:
            reasons.append(f"Break-even would need the GPUs busy {needed:.0%} of the time, more than they can be "
                           f"(measured {util:.0%}): at this throughput the fleet cannot beat {baseline}.")
        else:
            reasons.append(f"Break-even needs the GPUs busy {needed:.0%} of the time; they were busy {util:.0%}.")
    elif not reachable:
        reasons.append(f"{baseline} costs less per token than the energy alone, so no volume breaks even.")
    return Verdict(baseline, state, own, a, savings, breakeven, reachable, util, needed, headroom,
                   (*reasons, *tail))


def _price_sentence(baseline: str, state: State, savings: Decimal, v: Decimal, breakeven: Decimal | None,
                    margin: float) -> str:
    volume = f"{_mtok(v)} Mtok/month"
    if breakeven is None:
        where = "no volume breaks even"
    elif breakeven == 0:
        where = "any volume breaks even"
    else:
        where = f"break-even is {_mtok(breakeven)} Mtok/month"
    if state == "holds":
        return (f"Self-hosting saves {_usd(savings)}/month against {baseline} at {volume} "
                f"({where}).")
    if state == "at_risk":
        above = float(v / breakeven - 1) if breakeven else 0.0
        return (f"Self-hosting saves {_usd(savings)}/month against {baseline}, but {volume} is only "
                f"{above:.0%} above break-even ({_mtok(breakeven or Decimal(0))} Mtok/month; "
                f"margin {margin:.0%}).")
    return (f"{baseline} would have cost {_usd(-savings)}/month less than self-hosting: {volume} "
            f"is below what pays for the GPUs ({where}).")


def _tail(regulated: bool, notes: tuple[str, ...]) -> tuple[str, ...]:
    tail = list(notes)
    if regulated:
        tail.append("The workload handles regulated data (GDPR/HIPAA): the API path needs legal review "
                    "whatever the price.")
    return tuple(tail)


def _usd(value: Decimal) -> str:
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def _mtok(tokens: Decimal) -> str:
    value = tokens / MTOK
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"
