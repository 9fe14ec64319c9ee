"""Tokens served per hour, from engine counter scrapes and from proxy records (pure).

Counters are cumulative per series (server, model, engine core): the increase between two valid
scrapes is what was served, a decrease is a restart (the new value counts from zero), and the
increase is attributed to the hour of the later scrape. Failed scrapes (up=False) are gaps."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.cost import histograms as hist
from agent.cost.measure import typical_spacing, wall_seconds_by_hour
from agent.cost.units import HOUR_SECONDS
from agent.counters import increase
from agent.samples import HistogramSnapshot
from agent.utc import as_utc

COUNTERS: tuple[str, ...] = (
    "prompt_tokens_total",
    "generation_tokens_total",
    "cached_prompt_tokens_total",
    "requests_finished_total",
)


@dataclass(frozen=True, slots=True)
class EngineReading:
    """One engine scrape of one series as the cost engine needs it."""

    ts: datetime
    series: str
    up: bool
    counters: Mapping[str, float] = field(default_factory=dict)
    histograms: Mapping[str, HistogramSnapshot] = field(default_factory=dict)
    simulated: bool = False
    histograms_text: str | None = None
    """The stored histogram JSON, parsed only where an hour's histogram needs it (see measure_engine)."""

    def histogram_counts(self) -> dict[str, float]:
        """Each histogram's observation count (cheap: no buckets built), to notice a reset."""
        if self.histograms or self.histograms_text is None:
            return {name: h.count for name, h in self.histograms.items()}
        return hist.counts_of(self.histograms_text)

    def parsed_histograms(self) -> Mapping[str, HistogramSnapshot]:
        return self.histograms if self.histograms or self.histograms_text is None else \
            hist.parse_histograms(self.histograms_text)


@dataclass(frozen=True, slots=True)
class EngineHour:
    hour: datetime
    prompt_tokens: int
    generation_tokens: int
    cached_tokens: int
    requests: int
    observed_seconds: float
    """Wall seconds covered by successful scrapes (union over series)."""
    prompt_histogram: HistogramSnapshot | None
    generation_histogram: HistogramSnapshot | None
    simulated: bool


@dataclass
class _Acc:
    counters: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    histograms: dict[str, HistogramSnapshot] = field(default_factory=dict)
    simulated: bool = False


def measure_engine(
    readings: Iterable[EngineReading], start: datetime, end: datetime, gap_factor: float = 3.0
) -> dict[datetime, EngineHour]:
    """Hourly token figures for one host within [start, end). Pass, for each series, the last
    reading before `start` and the first at or after `end` as well (see measure_gpus)."""
    t0, t1 = as_utc(start).timestamp(), as_utc(end).timestamp()
    by_series: dict[str, list[EngineReading]] = defaultdict(list)
    for reading in readings:
        by_series[reading.series].append(reading)

    per_hour: dict[float, _Acc] = defaultdict(_Acc)
    observed: list[tuple[float, float]] = []
    memo: dict[int, Mapping[str, HistogramSnapshot]] = {}

    def parsed(reading: EngineReading) -> Mapping[str, HistogramSnapshot]:
        found = memo.get(id(reading))
        if found is None:
            found = memo[id(reading)] = reading.parsed_histograms()
        return found

    for series in by_series.values():
        series.sort(key=lambda r: r.ts)
        times = [as_utc(r.ts).timestamp() for r in series]
        spacing = typical_spacing(times)
        gap_after = float("inf") if spacing is None else gap_factor * spacing
        last_counter: dict[str, float] = {}
        last_counts: dict[str, float] = {}
        # Histograms are differenced per run of scrapes within one hour and without a restart: the
        # sum of the per-scrape increases of a run equals its last snapshot minus the one before it,
        # so only run ends are parsed. After a restart (a counter or a histogram count went down) a run
        # counts from zero.
        base: Mapping[str, HistogramSnapshot] | None = None
        run_open = False
        prev: EngineReading | None = None
        prev_hour = 0.0
        for i, reading in enumerate(series):
            tb = times[i]
            inside = t0 <= tb < t1
            hour = tb - tb % HOUR_SECONDS
            if inside and reading.simulated:
                per_hour[hour].simulated = True
            if not reading.up:
                continue
            if i > 0 and tb - times[i - 1] <= gap_after:
                observed.append((times[i - 1], tb))
            restarted = False
            for name in COUNTERS:
                value = reading.counters.get(name)
                if value is None:
                    continue
                previous = last_counter.get(name)
                if previous is not None:
                    restarted = restarted or value < previous
                    if inside:
                        per_hour[hour].counters[name] += increase(previous, value)
                last_counter[name] = value
            counts = reading.histogram_counts()
            restarted = restarted or any(counts.get(name, 0.0) < c for name, c in last_counts.items())
            last_counts = counts
            if prev is None:
                base = parsed(reading)
            else:
                if hour != prev_hour or restarted:
                    if run_open:
                        _close_run(per_hour[prev_hour], parsed(prev), base, t0 <= as_utc(prev.ts).timestamp() < t1)
                    base = None if restarted else parsed(prev)
                run_open = True
            prev, prev_hour = reading, hour
        if prev is not None and run_open:
            _close_run(per_hour[prev_hour], parsed(prev), base, t0 <= as_utc(prev.ts).timestamp() < t1)

    covered = wall_seconds_by_hour(observed, t0, t1)
    out: dict[datetime, EngineHour] = {}
    for hour in sorted(set(per_hour) | set(covered)):
        acc = per_hour.get(hour, _Acc())
        prompt_h = acc.histograms.get(hist.PROMPT)
        if "requests_finished_total" in acc.counters:
            requests = acc.counters["requests_finished_total"]
        else:
            requests = prompt_h.count if prompt_h is not None else 0.0
        when = datetime.fromtimestamp(hour, UTC)
        out[when] = EngineHour(
            hour=when,
            prompt_tokens=round(acc.counters.get("prompt_tokens_total", 0.0)),
            generation_tokens=round(acc.counters.get("generation_tokens_total", 0.0)),
            cached_tokens=round(acc.counters.get("cached_prompt_tokens_total", 0.0)),
            requests=round(requests),
            observed_seconds=covered.get(hour, 0.0),
            prompt_histogram=prompt_h,
            generation_histogram=acc.histograms.get(hist.GENERATION),
            simulated=acc.simulated,
        )
    return out


def _close_run(acc: _Acc, last: Mapping[str, HistogramSnapshot], base: Mapping[str, HistogramSnapshot] | None,
               inside: bool) -> None:
    """Add a run's histogram increase: its last snapshot minus `base` (all of it after a restart)."""
    if not inside:
        return
    for name, snapshot in last.items():
        previous = base.get(name) if base is not None else None
        if base is not None and previous is None:
            continue  # a histogram first seen in this run has no base to count from
        acc.histograms[name] = hist.add(acc.histograms.get(name), hist.delta(snapshot, previous))


@dataclass(frozen=True, slots=True)
class RequestTokens:
    """One proxied request's token counts (None: the response carried no usage)."""

    ts: datetime
    status: int
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None = None
    model: str = ""
    route: str = ""
    caller: str = ""
    """The salted hash of the caller's API key (agent.capture), never the key."""
    team: str = ""
    """The team header the proxy recorded ("" without one)."""

    @property
    def priceable(self) -> bool:
        """A successful request with both counts: what an API would have billed."""
        return 200 <= self.status < 300 and self.prompt_tokens is not None and self.completion_tokens is not None


@dataclass(frozen=True, slots=True)
class ProxyHour:
    hour: datetime
    prompt_tokens: int
    generation_tokens: int
    cached_tokens: int
    requests: int
    unpriced_requests: int
    """Requests that failed or carried no usage: not billed by an API, not counted as tokens."""


def cached_of(record: RequestTokens) -> int:
    """Cached input tokens, clamped to the prompt (a bad count must not price negative input)."""
    return min(max(record.cached_tokens or 0, 0), record.prompt_tokens or 0)


def proxy_hour(hour: datetime, records: Iterable[RequestTokens]) -> ProxyHour:
    prompt = generation = cached = requests = unpriced = 0
    for record in records:
        if not record.priceable:
            unpriced += 1
            continue
        requests += 1
        prompt += record.prompt_tokens or 0
        generation += record.completion_tokens or 0
        cached += cached_of(record)
    return ProxyHour(hour, prompt, generation, cached, requests, unpriced)

