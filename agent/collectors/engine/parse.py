"""A /metrics page -> concept values per (model, engine core), using prometheus_client's parser.

Parsing is pure (no I/O), so recorded pages drive the tests. prometheus_client's parser costs about
20 us per sample and half of a current vLLM page is families campwatch does not read (per-phase
latencies, request parameters, client-library metrics). So the page is first cut into family blocks
at its `# HELP` / `# TYPE` lines, a whole-line check with no sample parsing, and only the blocks of
extracted concepts go to the parser. Each family is then found by one dict lookup on its name.

A page is untrusted input: past `max_series` samples to parse or `max_models` (model, engine)
pairs it is refused (PageError), unknown family names are remembered up to UNMAPPED_NAMES_MAX (the
rest only counted), and a NaN, infinite or negative-counter value is rejected per series, counted
by reason in `ParsedPage.rejected`, and never reaches a stored value or a rate."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from agent.collectors.engine.detect import detect_server
from agent.collectors.engine.maps import (
    DEFAULT_ENGINE,
    EXTRACTED,
    FINISH_REASONS,
    GAUGES,
    HISTOGRAMS,
    KNOWN_PREFIXES,
    LORA_ADAPTERS,
    SERVER_MAPS,
    ServerMap,
    Source,
    counts_as_unmapped,
)
from agent.errors import PageError
from agent.samples import HistogramSnapshot

SeriesKey = tuple[str, str]
"""(model, engine)"""

MAX_SERIES = 50_000
"""Default engine.max_series: samples of the families read, per page."""
MAX_MODELS = 256
"""Default engine.max_models: (model, engine) pairs per page."""
UNMAPPED_NAMES_MAX = 1000
"""Unknown family names kept per page; further ones are counted in `unmapped_overflow`."""
NAME_CHARS_MAX = 200
"""An unknown family name longer than this is counted, not kept (real names are far shorter)."""
REJECT_REASONS: tuple[str, ...] = ("nan", "inf", "negative_counter")
_QUOTE_CHARS = 200


@dataclass(slots=True)
class SeriesValues:
    """Concept values of one (model, engine core): raw cumulative counters, gauges, histograms,
    and finished-request counts by reason."""

    model: str
    engine: str
    values: dict[str, float] = field(default_factory=dict)
    histograms: dict[str, HistogramSnapshot] = field(default_factory=dict)
    reasons: dict[str, float] = field(default_factory=dict)
    by_label: dict[str, dict[str, float]] = field(default_factory=dict)
    """concept -> label value -> value, for sources split by a label (Source.by_label)."""


@dataclass(frozen=True, slots=True)
class LoraAdapter:
    engine: str
    adapter: str
    state: str
    """running or waiting"""


@dataclass(frozen=True, slots=True)
class ParsedPage:
    kind: str
    series: Mapping[SeriesKey, SeriesValues]
    unmapped: frozenset[str]
    """Families with an engine prefix that no map knows and that are not declared ignorable or known
    (maps.counts_as_unmapped): the ones campwatch should learn."""
    lora: tuple[LoraAdapter, ...] = ()
    server: SeriesValues | None = None
    """Server-wide values (Source.server_wide: HTTP middleware), under model "" and engine ""."""
    unmapped_overflow: int = 0
    """Unknown families not kept in `unmapped` (past UNMAPPED_NAMES_MAX, or absurdly long names)."""
    rejected: Mapping[str, int] = field(default_factory=dict)
    """Samples rejected on this page, by reason (REJECT_REASONS); absent reasons had none."""


class _Unmapped:
    """Unknown family names seen on one page, bounded."""

    __slots__ = ("names", "overflow")

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.overflow = 0

    def add(self, name: str) -> None:
        if name in self.names:
            return
        if len(self.names) < UNMAPPED_NAMES_MAX and len(name) <= NAME_CHARS_MAX:
            self.names.add(name)
        else:
            self.overflow += 1


class _Table(dict[SeriesKey, SeriesValues]):
    """The page's series, refusing the page past `limit` (model, engine) pairs."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit


def _rejection(value: float, counter: bool) -> str | None:
    """Why a sample value cannot be used (a REJECT_REASONS entry), None when it can."""
    if value != value:
        return "nan"
    if value in (math.inf, -math.inf):
        return "inf"
    if counter and value < 0:
        return "negative_counter"
    return None


def _quote(text: str) -> str:
    """A piece of page text for an error message: short, whatever the page holds."""
    return text if len(text) <= _QUOTE_CHARS else f"{text[:_QUOTE_CHARS]}... ({len(text)} chars)"


def _lookup(server: ServerMap) -> Mapping[str, Source]:
    """Served names -> source, keyed the way prometheus_client names families: counters lose their
    `_total`; the served name stays too, for pages without TYPE lines."""
    table: dict[str, Source] = {}
    for name, source in server.sources.items():
        table[name] = source
        if source.type == "counter":
            table[name.removesuffix("_total")] = source
    return MappingProxyType(table)


_LOOKUPS: Mapping[str, Mapping[str, Source]] = {m.kind: _lookup(m) for m in SERVER_MAPS}
_GAUGE_SET = frozenset(GAUGES)
_HISTOGRAM_SET = frozenset(HISTOGRAMS)
_LE_CACHE: dict[str, float] = {}


class _HistAcc:
    __slots__ = ("bad", "buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets: dict[float, float] = {}
        self.sum = 0.0
        self.count: float | None = None
        self.bad = False

    def snapshot(self) -> HistogramSnapshot:
        buckets = tuple(sorted(self.buckets.items()))
        count = self.count
        if count is None:
            count = buckets[-1][1] if buckets and math.isinf(buckets[-1][0]) else 0.0
        return HistogramSnapshot(buckets=buckets, sum=self.sum, count=count)


def parse_page(text: str, *, skip_unused: bool = True, max_series: int = MAX_SERIES,
               max_models: int = MAX_MODELS) -> ParsedPage:
    """Read one page. PageError when it is not Prometheus text, shows no known server's metrics,
    or has more than `max_series` samples to parse or `max_models` (model, engine) pairs.

    `skip_unused=False` parses every family (same result, slower: for tests and the benchmark)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    del text  # the lines hold it; a page is large only when hostile, so hold it once
    server = detect_server(_declared_names(lines))
    unmapped = _Unmapped()
    if server is not None and skip_unused:
        lines = _select_blocks(lines, _LOOKUPS[server.kind], unmapped, max_series)
    else:
        _check_samples(sum(1 for line in lines if line and not line.startswith("#")), max_series)
    try:
        families = list(text_string_to_metric_families("\n".join(lines)))
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise PageError(f"expected Prometheus text exposition format: {_quote(str(exc))}") from None
    del lines
    if server is None:
        server = detect_server(f.name for f in families)
    if server is None:
        raise PageError(f"expected metric families of {_EXPECTED_SERVERS}; found none among {len(families)} families")
    return _extract(server, families, unmapped, max_models)


def _check_samples(count: int, max_series: int) -> None:
    if count > max_series:
        raise PageError(f"more than {max_series} samples to read on the page (engine.max_series); "
                        "expected a model server's metrics page")


_EXPECTED_SERVERS = ", ".join(f"{m.kind} ({m.prefix})" for m in SERVER_MAPS)


def _declared_names(lines: list[str]) -> list[str]:
    names = []
    for line in lines:
        if line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) == 4:
                names.append(parts[2])
    return names


def _wanted(name: str, lookup: Mapping[str, Source], unmapped: _Unmapped) -> bool:
    source = lookup.get(name)
    if source is None:
        if _unknown(name, lookup):
            unmapped.add(name)
        return False
    return source.concept in EXTRACTED


def _unknown(name: str, lookup: Mapping[str, Source]) -> bool:
    """Not mapped (`name` is not in `lookup`), and one campwatch should know (maps.counts_as_unmapped)."""
    return counts_as_unmapped(name, KNOWN_PREFIXES)


def _select_blocks(lines: list[str], lookup: Mapping[str, Source], unmapped: _Unmapped,
                   max_series: int) -> list[str]:
    """The page's lines in the family blocks worth parsing. A block starts at a HELP or TYPE line
    naming a new family; a sample line inside a skipped block that is not of that family (an
    untyped family, which has no comment lines) is judged by its own name. PageError past
    `max_series` kept samples."""
    kept: list[str] = []
    current = ""
    keep = False
    samples = 0
    for line in lines:
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and (parts[1] == "HELP" or parts[1] == "TYPE") and parts[2] != current:
                current = parts[2]
                keep = _wanted(current, lookup, unmapped)
        elif not keep and line and (not current or not line.startswith(current)):
            current = line.split("{", 1)[0].split(" ", 1)[0].strip()
            keep = _wanted(current, lookup, unmapped)
        if keep:
            kept.append(line)
            if line and line[0] != "#":
                samples += 1
                if samples > max_series:
                    _check_samples(samples, max_series)
    return kept


def _extract(server: ServerMap, families: list[Metric], unmapped: _Unmapped, max_models: int) -> ParsedPage:
    lookup = _LOOKUPS[server.kind]
    chosen: list[tuple[Source, Metric]] = []
    best_rank: dict[str, int] = {}
    for family in families:
        name = family.name
        source = lookup.get(name)
        if source is None:
            if _unknown(name, lookup):
                unmapped.add(name)
            continue
        concept = source.concept
        if concept not in EXTRACTED:
            continue
        chosen.append((source, family))
        rank = best_rank.get(concept)
        if rank is None or source.rank < rank:
            best_rank[concept] = source.rank

    series = _Table(max_models)
    server_values: SeriesValues | None = None
    hists: dict[tuple[SeriesKey, str], _HistAcc] = {}
    lora: dict[str, tuple[float, dict[str, str]]] = {}
    rejected: Counter[str] = Counter()
    model_label, engine_label = server.model_label, server.engine_label
    for source, family in chosen:
        concept = source.concept
        if source.rank != best_rank[concept]:
            continue
        if source.server_wide:
            if server_values is None:
                server_values = SeriesValues("", "")
            wide = server_values
            _read_split(family, source, lambda _labels: wide, rejected)  # noqa: B023
        elif source.by_label:
            _read_split(family, source, lambda labels: _series(
                series, (labels.get(model_label, ""), labels.get(engine_label, DEFAULT_ENGINE))), rejected)
        elif concept in _HISTOGRAM_SET:
            _read_histogram(family, concept, model_label, engine_label, series, hists, rejected)
        elif concept == FINISH_REASONS:
            _read_reasons(family, source, model_label, engine_label, series, rejected)
        elif concept == LORA_ADAPTERS:
            _read_lora(family, engine_label, lora, rejected)
        else:
            _read_scalar(family, concept, concept in _GAUGE_SET, model_label, engine_label, series, rejected)

    for (key, concept), acc in hists.items():
        if not acc.bad:
            series[key].histograms[concept] = acc.snapshot()
    for values in series.values():
        _complete(server, values)
    return ParsedPage(server.kind, series, frozenset(unmapped.names), _lora_adapters(lora),
                      server=server_values, unmapped_overflow=unmapped.overflow, rejected=dict(rejected))


def _series(series: _Table, key: SeriesKey) -> SeriesValues:
    found = series.get(key)
    if found is None:
        if len(series) >= series.limit:
            raise PageError(f"more than {series.limit} (model, engine) pairs on the page (engine.max_models); "
                            f"expected a model server's metrics page, last model {_quote(key[0])!r}")
        found = series[key] = SeriesValues(key[0], key[1])
    return found


def _accepted(family: Metric, model_label: str, engine_label: str, series: _Table, rejected: Counter[str],
              counter: bool, poisoned: set[SeriesKey]) -> Iterator[tuple[SeriesValues, float, dict[str, str]]]:
    """The family's samples with a usable value, each with its (model, engine) series and labels. A
    rejected sample is counted by reason and, in a counter, its series' key added to `poisoned`."""
    for sample in family.samples:
        value = float(sample.value)
        labels = sample.labels
        key = (labels.get(model_label, ""), labels.get(engine_label, DEFAULT_ENGINE))
        found = _series(series, key)
        reason = _rejection(value, counter)
        if reason is not None:
            rejected[reason] += 1
            if counter:
                poisoned.add(key)
            continue
        yield found, value, labels


def _read_scalar(family: Metric, concept: str, gauge: bool, model_label: str, engine_label: str,
                 series: _Table, rejected: Counter[str]) -> None:
    # Several samples for one (model, engine) differ in labels campwatch does not keep: counters
    # add up; gauges (the same state reported per rank) take the largest. A rejected sample takes
    # its (model, engine)'s counter off this page: a partial sum would look like a restart.
    poisoned: set[SeriesKey] = set()
    for found, value, _ in _accepted(family, model_label, engine_label, series, rejected, not gauge, poisoned):
        values = found.values
        old = values.get(concept)
        if old is None:
            values[concept] = value
        elif gauge:
            values[concept] = max(old, value)
        else:
            values[concept] = old + value
    for key in poisoned:
        series[key].values.pop(concept, None)


def _read_reasons(family: Metric, source: Source, model_label: str, engine_label: str,
                  series: _Table, rejected: Counter[str]) -> None:
    mapping, other = source.reasons, source.other_reasons
    poisoned: set[SeriesKey] = set()
    for found, value, labels in _accepted(family, model_label, engine_label, series, rejected, True, poisoned):
        upstream = labels.get(source.reason_label) or source.reason_default
        reason = mapping.get(upstream) or other or upstream
        reasons = found.reasons
        reasons[reason] = reasons.get(reason, 0.0) + value
    for key in poisoned:  # request totals follow from the reasons: none rather than a partial sum
        series[key].reasons.clear()


def _read_histogram(family: Metric, concept: str, model_label: str, engine_label: str,
                    series: _Table, hists: dict[tuple[SeriesKey, str], _HistAcc],
                    rejected: Counter[str]) -> None:
    name = family.name
    bucket_name, sum_name, count_name = name + "_bucket", name + "_sum", name + "_count"
    le_cache = _LE_CACHE
    last_key: SeriesKey | None = None
    acc = _HistAcc()
    for sample in family.samples:
        labels = sample.labels
        key = (labels.get(model_label, ""), labels.get(engine_label, DEFAULT_ENGINE))
        if key != last_key:
            found = hists.get((key, concept))
            if found is None:
                _series(series, key)
                found = hists[(key, concept)] = _HistAcc()
            acc, last_key = found, key
        sample_name = sample.name
        value = float(sample.value)
        if value != value or value in (math.inf, -math.inf) or (value < 0 and sample_name != sum_name):
            reason = _rejection(value, True)
            assert reason is not None
            rejected[reason] += 1
            acc.bad = True  # a histogram missing a bucket is no histogram: none for this series
            continue
        if sample_name == bucket_name:
            le = labels.get("le", "")
            bound = le_cache.get(le)
            if bound is None:
                try:
                    bound = float(le)
                except ValueError:
                    raise PageError(f"{name}: bucket bound le={_quote(le)!r} is not a number") from None
                if len(le_cache) < 4096:
                    le_cache[le] = bound
            acc.buckets[bound] = acc.buckets.get(bound, 0.0) + value
        elif sample_name == sum_name:
            acc.sum += value
        elif sample_name == count_name:
            acc.count = value if acc.count is None else acc.count + value


def _read_split(family: Metric, source: Source, target: Callable[[dict[str, str]], SeriesValues],
                rejected: Counter[str]) -> None:
    """A counter kept as its total and split by one label (Source.by_label). A rejected sample takes
    its target's counter off this page, as in _read_scalar: a partial sum would look like a restart."""
    concept, label = source.concept, source.by_label
    split_concept = source.label_concept or concept
    poisoned: list[SeriesValues] = []
    for sample in family.samples:
        value = float(sample.value)
        labels = sample.labels
        found = target(labels)
        reason = _rejection(value, True)
        if reason is not None:
            rejected[reason] += 1
            poisoned.append(found)
            continue
        found.values[concept] = found.values.get(concept, 0.0) + value
        if label:
            split = found.by_label.setdefault(split_concept, {})
            key = labels.get(label, "")
            split[key] = split.get(key, 0.0) + value
    for found in poisoned:
        found.values.pop(concept, None)
        found.by_label.pop(split_concept, None)


def _read_lora(family: Metric, engine_label: str, lora: dict[str, tuple[float, dict[str, str]]],
               rejected: Counter[str]) -> None:
    # vLLM keeps one child per adapter combination ever seen; the current one has the latest time.
    for sample in family.samples:
        reason = _rejection(float(sample.value), False)
        if reason is not None:
            rejected[reason] += 1
            continue
        engine = sample.labels.get(engine_label, DEFAULT_ENGINE)
        seen = lora.get(engine)
        if seen is None or sample.value > seen[0]:
            lora[engine] = (float(sample.value), sample.labels)


def _lora_adapters(lora: dict[str, tuple[float, dict[str, str]]]) -> tuple[LoraAdapter, ...]:
    out: list[LoraAdapter] = []
    for engine, (_, labels) in sorted(lora.items()):
        for state in ("running", "waiting"):
            for adapter in labels.get(f"{state}_lora_adapters", "").split(","):
                if adapter.strip():
                    out.append(LoraAdapter(engine, adapter.strip(), state))
    return tuple(out)


def _complete(server: ServerMap, series: SeriesValues) -> None:
    """Fill concepts that follow from others: token totals from histogram sums (TGI), request
    totals from finish reasons (vLLM, TGI). A concept with no source stays absent."""
    values = series.values
    for counter, histogram in server.counters_from_histogram_sum.items():
        if counter not in values and histogram in series.histograms:
            values[counter] = series.histograms[histogram].sum
    for counter, parts in server.counters_from_sum.items():
        present = [values[p] for p in parts if p in values]
        if counter not in values and present:
            values[counter] = sum(present)
    reasons = series.reasons
    if reasons:
        values.setdefault("requests_finished_total", sum(reasons.values()))
        values.setdefault("requests_errored_total", reasons.get("error", 0.0))
        values.setdefault("requests_aborted_total", reasons.get("abort", 0.0))
