"""Reading Prometheus text pages in the suite, independently of campwatch's own parser: samples by
name and labels, and histogram_quantile with Prometheus' rules, so campwatch's figures are checked
against a second implementation."""

from __future__ import annotations

import math
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


def samples(page: str) -> dict[tuple[str, Labels], float]:
    out: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
    return out


def value(page_samples: Mapping[tuple[str, Labels], float], name: str, **labels: str) -> float | None:
    """The one sample of `name` whose labels include `labels` (None when there is none)."""
    wanted = set(labels.items())
    found = [v for (n, ls), v in page_samples.items() if n == name and wanted <= ls]
    if len(found) > 1:
        raise AssertionError(f"{name}{labels}: {len(found)} samples match, expected one")
    return found[0] if found else None


def buckets(page_samples: Mapping[tuple[str, Labels], float], histogram: str) -> dict[float, float]:
    out: dict[float, float] = {}
    for (name, labels), v in page_samples.items():
        if name == histogram + "_bucket":
            le = dict(labels)["le"]
            bound = math.inf if le == "+Inf" else float(le)
            out[bound] = out.get(bound, 0.0) + v
    return out


def histogram_quantile(q: float, cumulative: Mapping[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative buckets {upper bound: count}."""
    bounds = sorted(cumulative)
    if not bounds or bounds[-1] != math.inf:
        return None
    total = cumulative[math.inf]
    if total == 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for i, bound in enumerate(bounds):
        count = cumulative[bound]
        if count >= rank:
            if bound == math.inf:
                return bounds[-2] if len(bounds) > 1 else None
            if i == 0 and bound <= 0:
                return bound
            return lower + (bound - lower) * ((rank - below) / (count - below)) if count > below else bound
        lower, below = bound, count
    return None
