"""Change points in the output descriptors, found from the data (pure).

Method: CUSUM with binary segmentation on hourly means of each per-request descriptor the proxy
recorded. For a series x_1..x_n with mean m, S_k = sum_{i<=k}(x_i - m); the candidate change is
after the k with the largest |S_k|, and its statistic is max|S_k| / (sigma * sqrt(n)), with sigma
estimated from successive differences (std(diff) / sqrt 2, which a level shift barely moves).
Without a change the statistic follows the Kolmogorov distribution (P > 1.63 is about 1 %); a
change is kept when the statistic exceeds `threshold` and the means either side differ by at
least `min_shift` (relative), so a large fleet's tiny, real but irrelevant shifts are not flagged.
Each side is then searched again (binary segmentation), up to `max_points` per descriptor."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

THRESHOLD = 1.63
MIN_SHIFT = 0.10
MIN_SEGMENT = 6
"""Hours at least on each side of a change."""


@dataclass(frozen=True, slots=True)
class ChangePoint:
    feature: str
    at: datetime
    """The first hour after the change (UTC)."""
    before_mean: float
    after_mean: float
    statistic: float
    model: str = ""

    @property
    def relative_shift(self) -> float:
        base = abs(self.before_mean) or 1e-12
        return (self.after_mean - self.before_mean) / base


def _best_split(x: np.ndarray) -> tuple[int, float] | None:
    n = len(x)
    if n < 2 * MIN_SEGMENT:
        return None
    sigma = float(np.std(np.diff(x)) / math.sqrt(2))
    if not math.isfinite(sigma) or sigma <= 0:
        return None
    s = np.cumsum(x - x.mean())[:-1]
    candidates = np.abs(s)
    candidates[:MIN_SEGMENT - 1] = 0
    candidates[n - MIN_SEGMENT:] = 0
    k = int(np.argmax(candidates))
    return k + 1, float(candidates[k] / (sigma * math.sqrt(n)))


def series_change_points(feature: str, series: pd.Series, *, threshold: float = THRESHOLD,
                         min_shift: float = MIN_SHIFT, max_points: int = 3, model: str = "") -> list[ChangePoint]:
    """Change points of one time-indexed series (binary segmentation), oldest first."""
    clean = series.dropna().astype(float)
    found: list[ChangePoint] = []
    segments = [(0, len(clean))]
    while segments and len(found) < max_points:
        lo, hi = segments.pop(0)
        x = clean.to_numpy()[lo:hi]
        split = _best_split(x)
        if split is None:
            continue
        k, statistic = split
        before, after = float(x[:k].mean()), float(x[k:].mean())
        shift = abs(after - before) / (abs(before) or 1e-12)
        if statistic <= threshold or shift < min_shift:
            continue
        at = pd.Timestamp(clean.index[lo + k]).to_pydatetime()
        found.append(ChangePoint(feature, at, before, after, statistic, model))
        segments += [(lo, lo + k), (lo + k, hi)]
    return sorted(found, key=lambda c: c.at)


def find_change_points(requests: pd.DataFrame, features: tuple[str, ...], *, freq: str = "1h",
                       threshold: float = THRESHOLD, min_shift: float = MIN_SHIFT) -> list[ChangePoint]:
    """Change points of each descriptor's hourly mean, per model, ordered by time then feature."""
    if requests.empty:
        return []
    found: list[ChangePoint] = []
    for model, rows in requests.groupby("model"):
        for feature in features:
            if feature not in rows:
                continue
            frame = rows[["ts", feature]].dropna()
            if frame.empty:
                continue
            hourly = frame.set_index("ts")[feature].astype(float).resample(freq).mean()
            found += series_change_points(feature, hourly, threshold=threshold, min_shift=min_shift,
                                          model=str(model))
    return sorted(found, key=lambda c: (c.at, c.model, c.feature))


def as_frame(points: list[ChangePoint]) -> pd.DataFrame:
    return pd.DataFrame([{"model": p.model, "feature": p.feature, "changed_at": p.at, "before_mean": p.before_mean,
                          "after_mean": p.after_mean, "relative_shift": p.relative_shift,
                          "cusum_statistic": p.statistic} for p in points],
                        columns=["model", "feature", "changed_at", "before_mean", "after_mean", "relative_shift",
                                 "cusum_statistic"])
