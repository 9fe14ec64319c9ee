"""Service level indicators over trailing windows, from the recent scrapes of one server.

Each (model, engine core) series keeps reset-adjusted running totals of its counters and histogram
buckets (see agent/counters.py); a window's increase is the latest total minus the total at the window's
first scrape. SLIs are per (server, model): counters and buckets are summed across engine cores
after reset handling, so one core restarting never looks like a drop for the model. Server-wide
counters (the API server's HTTP outcomes) give per-server SLIs without a model label.

Model FLOPs utilization and memory-bandwidth utilization divide the per-GPU estimates (vLLM and
SGLang with --enable-mfu-metrics) by the GPU's peak figures (peaks.py); the estimates are averaged
over engine cores, since each core reports per GPU of its own. A page whose estimates are all zero
(the flag is off) yields none of these SLIs rather than a misleading 0."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agent.collectors.engine.maps import COUNTERS, GAUGES
from agent.collectors.engine.parse import ParsedPage, SeriesKey
from agent.collectors.engine.windows import Window
from agent.counters import adjusted_buckets, adjusted_total, histogram_was_reset
from agent.quantile import histogram_quantiles
from agent.samples import Point, labels

QUANTILES: tuple[tuple[str, float], ...] = (("0.5", 0.5), ("0.9", 0.9), ("0.99", 0.99))
LATENCY_FAMILIES: Mapping[str, str] = {
    "ttft_seconds": "campwatch_engine_ttft_seconds",
    "inter_token_latency_seconds": "campwatch_engine_inter_token_latency_seconds",
    "e2e_latency_seconds": "campwatch_engine_e2e_latency_seconds",
    "queue_time_seconds": "campwatch_engine_queue_time_seconds",
    "prefill_time_seconds": "campwatch_engine_prefill_time_seconds",
    "decode_time_seconds": "campwatch_engine_decode_time_seconds",
    "inference_time_seconds": "campwatch_engine_inference_time_seconds",
}
RATE_FAMILIES: Mapping[str, str] = {
    "requests_finished_total": "campwatch_engine_requests_per_second",
    "prompt_tokens_total": "campwatch_engine_prompt_tokens_per_second",
    "generation_tokens_total": "campwatch_engine_generation_tokens_per_second",
    "preemptions_total": "campwatch_engine_preemptions_per_second",
    "requests_errored_total": "campwatch_engine_request_errors_per_second",
    "requests_aborted_total": "campwatch_engine_request_aborts_per_second",
    "admission_rejections_total": "campwatch_engine_admission_rejections_per_second",
}
MEAN_HISTOGRAMS: Mapping[str, str] = {
    "preemptions_per_request": "campwatch_engine_preemptions_per_request_avg",
}
"""Histograms whose window mean (sum increase / count increase) is the SLI."""
PER_TOKEN_TIMES: tuple[tuple[str, str, str], ...] = (
    # (seconds counter, tokens counter, SLI): llama.cpp's busy-time counters.
    ("generation_seconds_total", "generation_tokens_total", "campwatch_engine_time_per_output_token_avg_seconds"),
    ("prompt_seconds_total", "computed_prompt_tokens_total", "campwatch_engine_prompt_time_per_token_avg_seconds"),
)
SPLIT_SHARES: Mapping[str, str] = {
    "prompt_tokens_by_source_total": "campwatch_engine_prompt_token_source_ratio",
}
"""Counters split by a label whose window shares (summing to 1) are exported by that label."""
_QS = tuple(q for _, q in QUANTILES)
_REASON = "reason:"
_TRACKED_COUNTERS = frozenset(COUNTERS)
_TRACKED_HISTOGRAMS = frozenset((*LATENCY_FAMILIES, *MEAN_HISTOGRAMS))
_SPLIT = "split:"
_SUM, _COUNT = ":sum", ":count"
_GAUGES = frozenset(GAUGES)


@dataclass(frozen=True, slots=True)
class _EngineSnap:
    counters: Mapping[str, float]
    """Reset-adjusted running totals, by concept (finish reasons as reason:<name>)."""
    hists: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]]
    """(bucket bounds, reset-adjusted cumulative counts) by concept."""
    gauges: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class PeakFigures:
    """One GPU's peak rates, to turn per-GPU estimates into utilization."""

    flops_per_second: float
    bytes_per_second: float


@dataclass(frozen=True, slots=True)
class _Snap:
    t: float
    models: Mapping[str, Mapping[str, _EngineSnap]]
    server: Mapping[str, float]
    """Reset-adjusted server-wide counters (HTTP outcomes, split:<concept>:<label value>)."""
    gauges: Mapping[str, Mapping[str, tuple[float, float, float]]]
    """model -> concept -> (sum, mean, max) across engine cores at this scrape."""
    server_seen: bool = False
    """The page served server-wide families (possibly with no samples yet: children appear lazily)."""


class _Track:
    """Running state of one (model, engine) series between scrapes."""

    __slots__ = ("adj", "hists", "last_seen", "raw")

    def __init__(self) -> None:
        self.raw: dict[str, float] = {}
        self.adj: dict[str, float] = {}
        self.hists: dict[str, tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]] = {}
        """concept -> (bounds, raw cumulative, adjusted cumulative)"""
        self.last_seen = 0.0


class SliDeriver:
    """Holds the recent scrapes of one server and turns them into SLI points.

    Call `observe` once per successful scrape (times from a monotonic clock, seconds), then
    `points`. A failed scrape is simply not observed: windows span the gap, rates stay correct."""

    def __init__(self, windows: Sequence[Window], interval_s: float, peak: PeakFigures | None = None) -> None:
        if not windows:
            raise ValueError("expected at least one SLI window")
        self._windows = tuple(windows)
        self._peak = peak
        self._server_track = _Track()
        self._slack = interval_s / 2
        self._keep = max(w.seconds for w in windows) + interval_s + self._slack
        self._tracks: dict[SeriesKey, _Track] = {}
        self._history: list[_Snap] = []

    def observe(self, t: float, page: ParsedPage) -> bool:
        """Record one scrape; True when a counter went back (the server restarted)."""
        reset = False
        models: dict[str, dict[str, _EngineSnap]] = {}
        for key, series in page.series.items():
            track = self._tracks.get(key)
            if track is None:
                track = self._tracks[key] = _Track()
            track.last_seen = t
            counters: dict[str, float] = {}
            for concept, value in series.values.items():
                if concept in _TRACKED_COUNTERS:
                    reset = self._advance(track, concept, value) or reset
                    counters[concept] = track.adj[concept]
            for reason, value in series.reasons.items():
                name = _REASON + reason
                reset = self._advance(track, name, value) or reset
                counters[name] = track.adj[name]
            for concept, split in series.by_label.items():
                for label_value, value in split.items():
                    name = f"{_SPLIT}{concept}:{label_value}"
                    reset = self._advance(track, name, value) or reset
                    counters[name] = track.adj[name]
            for concept, hist in series.histograms.items():
                if concept not in _TRACKED_HISTOGRAMS:
                    continue
                if concept in MEAN_HISTOGRAMS:
                    for suffix, value in ((_SUM, hist.sum), (_COUNT, hist.count)):
                        reset = self._advance(track, concept + suffix, value) or reset
                        counters[concept + suffix] = track.adj[concept + suffix]
                bounds = tuple(b for b, _ in hist.buckets)
                raw = tuple(c for _, c in hist.buckets)
                prev = track.hists.get(concept)
                if prev is None or prev[0] != bounds:
                    adj = raw  # new series or new bucket layout: windows restart from here
                else:
                    reset = histogram_was_reset(prev[1], raw) or reset
                    adj = adjusted_buckets(prev[1], prev[2], raw)
                track.hists[concept] = (bounds, raw, adj)
            gauges = {c: v for c, v in series.values.items() if c in _GAUGES}
            hists = {c: (h[0], h[2]) for c, h in track.hists.items() if c in series.histograms}
            models.setdefault(series.model, {})[series.engine] = _EngineSnap(counters, hists, gauges)
        server: dict[str, float] = {}
        if page.server is not None:
            wide, track = page.server, self._server_track
            named = [(c, v) for c, v in wide.values.items() if c in _TRACKED_COUNTERS]
            named += [(f"{_SPLIT}{c}:{k}", v) for c, split in wide.by_label.items() for k, v in split.items()]
            for name, value in named:
                reset = self._advance(track, name, value) or reset
                server[name] = track.adj[name]
        self._history.append(_Snap(t, models, server=server, server_seen=page.server is not None,
                                   gauges={m: _gauge_aggregates(e) for m, e in models.items()}))
        self._forget(t)
        return reset

    @staticmethod
    def _advance(track: _Track, name: str, value: float) -> bool:
        """Update one counter's running total; True when it went back."""
        prev = track.raw.get(name)
        track.adj[name] = adjusted_total(prev, track.adj.get(name, 0.0), value)
        track.raw[name] = value
        return prev is not None and value < prev

    def _forget(self, now: float) -> None:
        cutoff = now - self._keep
        drop = 0
        while drop < len(self._history) - 1 and self._history[drop].t < cutoff:
            drop += 1
        if drop:
            del self._history[:drop]
        stale = [key for key, track in self._tracks.items() if track.last_seen < cutoff]
        for key in stale:
            del self._tracks[key]

    def points(self, host: str, server: str) -> list[Point]:
        """SLI points for every model on the latest scrape and every window."""
        if not self._history:
            return []
        latest = self._history[-1]
        out: list[Point] = []
        for window in self._windows:
            start = latest.t - window.seconds - self._slack
            in_window = [s for s in self._history if s.t >= start]
            for model in sorted(latest.models):
                view = _ModelWindow(model, in_window, latest, self._peak)
                out.extend(view.points(labels(host=host, server=server, model=model, window=window.label)))
            out.extend(_server_points(in_window, latest, labels(host=host, server=server, window=window.label)))
        return out


def _gauge_aggregates(engines: Mapping[str, _EngineSnap]) -> dict[str, tuple[float, float, float]]:
    out: dict[str, tuple[float, float, float]] = {}
    for concept in GAUGES:
        values = [e.gauges[concept] for e in engines.values() if concept in e.gauges]
        if values:
            total = sum(values)
            out[concept] = (total, total / len(values), max(values))
    return out


def _with(base: tuple[tuple[str, str], ...], key: str, value: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((*base, (key, value))))


class _ModelWindow:
    """One model over one window: increases, rates, shares and quantiles."""

    def __init__(self, model: str, snaps: Sequence[_Snap], latest: _Snap, peak: PeakFigures | None = None) -> None:
        self.model = model
        self.peak = peak
        self.snaps = [s for s in snaps if model in s.models]
        self.latest = latest.models[model]
        self.span = latest.t - self.snaps[0].t

    def _base(self, engine: str, concept: str) -> float:
        for snap in self.snaps:
            found = snap.models[self.model].get(engine)
            if found is not None:
                value = found.counters.get(concept)
                if value is not None:
                    return value
        return 0.0  # unreachable: the latest scrape is in the window

    def increase(self, concept: str) -> float | None:
        total: float | None = None
        for engine, snap in self.latest.items():
            value = snap.counters.get(concept)
            if value is not None:
                total = (total or 0.0) + max(0.0, value - self._base(engine, concept))
        return total

    def bucket_increase(self, concept: str) -> list[tuple[float, float]]:
        merged: dict[float, float] = {}
        for engine, snap in self.latest.items():
            hist = snap.hists.get(concept)
            if hist is None:
                continue
            bounds, adjusted = hist
            base = adjusted
            for old in self.snaps:
                found = old.models[self.model].get(engine)
                old_hist = found.hists.get(concept) if found is not None else None
                if old_hist is not None and old_hist[0] == bounds:
                    base = old_hist[1]
                    break
            for bound, now, then in zip(bounds, adjusted, base, strict=True):
                merged[bound] = merged.get(bound, 0.0) + max(0.0, now - then)
        return sorted(merged.items())

    def gauge_stats(self, concept: str) -> tuple[float, float, float] | None:
        """(mean of per-scrape sums across cores, mean of per-scrape core means, max) over the window."""
        found = [agg for snap in self.snaps if (agg := snap.gauges[self.model].get(concept)) is not None]
        if not found:
            return None
        n = len(found)
        return sum(a[0] for a in found) / n, sum(a[1] for a in found) / n, max(a[2] for a in found)

    def points(self, base: tuple[tuple[str, str], ...]) -> list[Point]:
        out: list[Point] = []
        if self.span > 0:
            for concept, name in RATE_FAMILIES.items():
                inc = self.increase(concept)
                if inc is not None:
                    out.append(Point(name, inc / self.span, base))
            out.extend(self._finish_shares(base))
            out.extend(self._window_means(base))
            out.extend(self._split_shares(base))
            out.extend(self._utilization(base))
        spec = self._spec_decode_acceptance()
        if spec is not None:
            out.append(Point("campwatch_engine_spec_decode_acceptance_ratio", spec, base))
        ratio = self._prefix_cache_hit_ratio()
        if ratio is not None:
            out.append(Point("campwatch_engine_prefix_cache_hit_ratio", ratio, base))
        if self.span > 0:
            for concept, name in LATENCY_FAMILIES.items():
                buckets = self.bucket_increase(concept)
                if not buckets:
                    continue
                values = histogram_quantiles(_QS, buckets)
                for (label, _), value in zip(QUANTILES, values, strict=True):
                    if value is not None and not math.isinf(value):
                        out.append(Point(name, value, _with(base, "quantile", label)))
        for concept, avg_name, max_name, use_sum in (
            ("requests_running", "campwatch_engine_requests_running_avg", None, True),
            ("requests_waiting", "campwatch_engine_requests_waiting_avg", None, True),
            ("kv_cache_usage_ratio", "campwatch_engine_kv_cache_usage_avg_ratio",
             "campwatch_engine_kv_cache_usage_max_ratio", False),
        ):
            stats = self.gauge_stats(concept)
            if stats is None:
                continue
            out.append(Point(avg_name, stats[0] if use_sum else stats[1], base))
            if max_name:
                out.append(Point(max_name, stats[2], base))
        return out

    def _finish_shares(self, base: tuple[tuple[str, str], ...]) -> list[Point]:
        reasons = {c for snap in self.latest.values() for c in snap.counters if c.startswith(_REASON)}
        increases = {r: self.increase(r) or 0.0 for r in reasons}
        total = sum(increases.values())
        if total <= 0:
            return []
        return [Point("campwatch_engine_finish_reason_ratio", inc / total, _with(base, "reason", r[len(_REASON):]))
                for r, inc in sorted(increases.items())]

    def _ratio(self, num: str, den: str) -> float | None:
        top, bottom = self.increase(num), self.increase(den)
        if top is None or not bottom:
            return None
        return top / bottom

    def _window_means(self, base: tuple[tuple[str, str], ...]) -> list[Point]:
        out: list[Point] = []
        for concept, name in MEAN_HISTOGRAMS.items():
            mean = self._ratio(concept + _SUM, concept + _COUNT)
            if mean is not None:
                out.append(Point(name, mean, base))
        for seconds, tokens, name in PER_TOKEN_TIMES:
            mean = self._ratio(seconds, tokens)
            if mean is not None:
                out.append(Point(name, mean, base))
        drafts = self._ratio("spec_decode_accepted_tokens_total", "spec_decode_drafts_total")
        if drafts is not None:
            # vLLM's mean acceptance length: the bonus token plus the accepted drafts per draft step.
            out.append(Point("campwatch_engine_spec_decode_acceptance_length_avg", 1.0 + drafts, base))
        return out

    def _split_shares(self, base: tuple[tuple[str, str], ...]) -> list[Point]:
        out: list[Point] = []
        for concept, name in SPLIT_SHARES.items():
            prefix = f"{_SPLIT}{concept}:"
            keys = {c for snap in self.latest.values() for c in snap.counters if c.startswith(prefix)}
            increases = {k: self.increase(k) or 0.0 for k in keys}
            total = sum(increases.values())
            if total > 0:
                out.extend(Point(name, inc / total, _with(base, "source", k[len(prefix):]))
                           for k, inc in sorted(increases.items()))
        return out

    def _per_gpu_rate(self, concepts: Sequence[str]) -> float | None:
        """Mean per-GPU rate over engine cores of the summed counters; None when not served or all zero."""
        cores = [snap for snap in self.latest.values() if any(c in snap.counters for c in concepts)]
        if not cores or not any(snap.counters.get(c, 0.0) > 0 for snap in cores for c in concepts):
            return None
        total = sum(self.increase(c) or 0.0 for c in concepts)
        return total / len(cores) / self.span

    def _utilization(self, base: tuple[tuple[str, str], ...]) -> list[Point]:
        out: list[Point] = []
        flops = self._per_gpu_rate(("estimated_flops_total",))
        if flops is not None:
            out.append(Point("campwatch_engine_flops_per_second_per_gpu", flops, base))
            if self.peak is not None:
                out.append(Point("campwatch_engine_mfu_ratio", flops / self.peak.flops_per_second, base))
        moved = self._per_gpu_rate(("estimated_read_bytes_total", "estimated_write_bytes_total"))
        if moved is not None:
            out.append(Point("campwatch_engine_memory_bytes_per_second_per_gpu", moved, base))
            if self.peak is not None:
                out.append(Point("campwatch_engine_memory_bandwidth_utilization_ratio",
                                 moved / self.peak.bytes_per_second, base))
        return out

    def _spec_decode_acceptance(self) -> float | None:
        if self.span > 0:
            ratio = self._ratio("spec_decode_accepted_tokens_total", "spec_decode_draft_tokens_total")
            if ratio is not None:
                return min(1.0, ratio)
        stats = self.gauge_stats("spec_decode_acceptance_ratio")
        return None if stats is None else stats[1]

    def _prefix_cache_hit_ratio(self) -> float | None:
        if self.span > 0:
            for hits, queries in (("prefix_cache_hits_total", "prefix_cache_queries_total"),
                                  ("cached_prompt_tokens_total", "prompt_tokens_total")):
                num, den = self.increase(hits), self.increase(queries)
                if num is not None and den:
                    return min(1.0, num / den)
        stats = self.gauge_stats("prefix_cache_hit_ratio_reported")
        return None if stats is None else stats[1]


_HTTP_SPLIT = f"{_SPLIT}http_requests_total:"


def _server_points(snaps: Sequence[_Snap], latest: _Snap, base: tuple[tuple[str, str], ...]) -> list[Point]:
    """Server-wide SLIs: HTTP requests per second and the share answered with a 5xx status (status
    classes as vLLM's middleware groups them, "5xx", or exact codes as SGLang serves them)."""
    span = latest.t - snaps[0].t
    if span <= 0 or not latest.server:
        return []
    first = snaps[0]
    statuses = [name for name in latest.server if name.startswith(_HTTP_SPLIT)]
    if not statuses or not first.server_seen:
        return []

    def increase(name: str) -> float:
        # The middleware creates a status's child at its first response: one first served inside
        # the window (the idle server's first 2xx, its first 5xx) counted from zero.
        return max(0.0, latest.server[name] - first.server.get(name, 0.0))

    total = sum(increase(name) for name in statuses)
    errors = sum(increase(name) for name in statuses if name[len(_HTTP_SPLIT):].startswith("5"))
    out = [Point("campwatch_engine_http_requests_per_second", total / span, base)]
    if total > 0:
        out.append(Point("campwatch_engine_http_server_error_ratio", errors / total, base))
    return out
