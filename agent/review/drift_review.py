"""Drift investigation: what moved, when, and by how much, from the stored drift results and the
per-request descriptors the proxy recorded (no text unless capture.store_text kept some)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from agent.drift.windows import Windows
from agent.review.changepoints import ChangePoint
from agent.review.plots import mark_simulated

UNITS = {"completion_tokens": "tokens", "output_chars": "characters", "refusal": "share refused",
         "json_valid": "share valid", "non_ascii_ratio": "share of characters", "latency_seconds": "seconds",
         "ttft_seconds": "seconds"}
DESCRIPTORS = ("completion_tokens", "output_chars", "refusal", "json_valid", "non_ascii_ratio", "latency_seconds",
               "ttft_seconds")


def latest_run(drift: pd.DataFrame) -> pd.DataFrame:
    """Each model's most recent check, one row per feature, drifted first."""
    if drift.empty:
        return drift
    last = drift[drift["ts"] == drift.groupby("model")["ts"].transform("max")]
    columns = ["model", "feature", "drifted", "score", "threshold", "method", "n_reference", "n_current", "ts"]
    return last[columns].sort_values(["model", "drifted", "feature"], ascending=[True, False, True])


def share_drifted_over_time(drift: pd.DataFrame) -> pd.DataFrame:
    """Per model and check: the share of tested features that drifted (summary rows excluded)."""
    if drift.empty:
        return pd.DataFrame(columns=["ts", "model", "share_drifted", "features"])
    features = drift[~drift["feature"].str.startswith("_")]
    grouped = features.groupby(["ts", "model"])["drifted"]
    return pd.DataFrame({"share_drifted": grouped.mean(), "features": grouped.size()}).reset_index()


def descriptors_by_day(requests: pd.DataFrame) -> pd.DataFrame:
    """Daily means of the output descriptors per model (refusal and json_valid become rates)."""
    if requests.empty:
        return pd.DataFrame(columns=["day", "model", "requests", *DESCRIPTORS])
    frame = requests.assign(day=requests["ts"].dt.floor("D"))
    for column in ("refusal", "json_valid"):
        frame[column] = frame[column].astype("float")
    daily = frame.groupby(["day", "model"])[list(DESCRIPTORS)].mean()
    daily.insert(0, "requests", frame.groupby(["day", "model"]).size())
    return daily.reset_index()


def before_after(requests: pd.DataFrame, split: datetime, feature: str) -> pd.DataFrame:
    """Summary statistics of one descriptor before and after a moment (e.g. a model or prompt change)."""
    frame = requests.dropna(subset=[feature]).copy()
    frame[feature] = frame[feature].astype("float")
    frame["period"] = frame["ts"].map(lambda ts: "after" if ts >= split else "before")
    return frame.groupby("period")[feature].describe(percentiles=[0.5, 0.95])


def before_after_figure(requests: pd.DataFrame, split: datetime, feature: str = "output_chars") -> Figure:
    fig = Figure(figsize=(9, 3.5))
    ax = fig.add_subplot()
    frame = requests.dropna(subset=[feature])
    before = frame[frame["ts"] < split][feature].astype(float)
    after = frame[frame["ts"] >= split][feature].astype(float)
    if not before.empty or not after.empty:
        bins = 30
        ax.hist(before, bins=bins, alpha=0.6, density=True, label=f"before {split:%Y-%m-%d %H:%M} (n={len(before)})")
        ax.hist(after, bins=bins, alpha=0.6, density=True, label=f"after (n={len(after)})")
    ax.set_xlabel(f"{feature} ({UNITS.get(feature, 'value')} per request)")
    ax.set_ylabel(f"density (share of requests per {UNITS.get(feature, 'unit')})")
    ax.set_title(f"{feature}: before and after {split:%Y-%m-%d %H:%M} UTC")
    ax.legend(fontsize=8)
    simulated = bool(requests["simulated"].any()) if "simulated" in requests and not requests.empty else False
    return mark_simulated(fig, simulated)


def _simulated(requests: pd.DataFrame) -> bool:
    return bool(requests["simulated"].any()) if "simulated" in requests and not requests.empty else False


def _numeric(requests: pd.DataFrame, feature: str) -> pd.Series:
    return requests[feature].dropna().astype(float)


def timeline_figure(requests: pd.DataFrame, points: Sequence[ChangePoint], features: Sequence[str] = DESCRIPTORS,
                    freq: str = "6h") -> Figure:
    """One panel per descriptor: its mean per `freq` over time (per model), with each change point
    found in that descriptor as a dashed line."""
    fig = Figure(figsize=(10, 1.9 * len(features) + 0.6))
    axes = fig.subplots(len(features), 1, sharex=True, squeeze=False)[:, 0]
    for ax, feature in zip(axes, features, strict=True):
        for model, rows in (requests.groupby("model") if not requests.empty else ()):
            series = rows.set_index("ts")[feature].dropna().astype(float).resample(freq).mean()
            ax.plot(series.index, series.to_numpy(), label=str(model), linewidth=1)
        for p in points:
            if p.feature == feature:
                ax.axvline(p.at, color="#e45756", linestyle="--", linewidth=1)
        ax.set_ylabel(UNITS.get(feature, "value"), fontsize=7)
        ax.set_title(f"{feature} ({freq} mean; dashed: change point)", fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel("time (UTC)")
    fig.suptitle("Output descriptors over time")
    fig.tight_layout()
    return mark_simulated(fig, _simulated(requests))


@dataclass(frozen=True, slots=True)
class ComparedWindows(Windows):
    """The drift check's windows (half-open, UTC) compared here, and where they come from."""

    source: str = ""


def compared_windows(drift: pd.DataFrame, requests: pd.DataFrame, split: datetime | None) -> ComparedWindows | None:
    """The latest stored drift check's windows; without one, before and after the strongest change
    point; None when neither exists."""
    if not drift.empty:
        last = drift.loc[drift["ts"].idxmax()]
        return ComparedWindows(
            reference_start=last["reference_start"].to_pydatetime(),
            reference_end=last["reference_end"].to_pydatetime(),
            current_start=last["window_start"].to_pydatetime(), current_end=last["window_end"].to_pydatetime(),
            source=f"the drift check stored at {last['ts']:%Y-%m-%d %H:%M} UTC")
    if split is not None and not requests.empty:
        first, last_ts = requests["ts"].min().to_pydatetime(), requests["ts"].max().to_pydatetime()
        return ComparedWindows(reference_start=first, reference_end=split, current_start=split,
                               current_end=last_ts + timedelta(seconds=1), source="before and after the change point")
    return None


def reference_vs_current(requests: pd.DataFrame, windows: Windows,
                         features: Sequence[str] = DESCRIPTORS) -> pd.DataFrame:
    """Per descriptor: count, mean and median in the reference and the current window."""
    ref = requests[(requests["ts"] >= windows.reference_start) & (requests["ts"] < windows.reference_end)]
    cur = requests[(requests["ts"] >= windows.current_start) & (requests["ts"] < windows.current_end)]
    rows = []
    for feature in features:
        a, b = _numeric(ref, feature), _numeric(cur, feature)
        rows.append({"feature": feature, "unit": UNITS.get(feature, "value"),
                     "n_reference": len(a), "n_current": len(b),
                     "mean_reference": float(a.mean()) if len(a) else None,
                     "mean_current": float(b.mean()) if len(b) else None,
                     "median_reference": float(a.median()) if len(a) else None,
                     "median_current": float(b.median()) if len(b) else None})
    return pd.DataFrame(rows)


def distributions_figure(requests: pd.DataFrame, windows: Windows, features: Sequence[str] = DESCRIPTORS) -> Figure:
    """One histogram panel per descriptor: the reference window against the current one (density)."""
    columns = 2
    rows = math.ceil(len(features) / columns)
    fig = Figure(figsize=(10, 2.4 * rows + 0.6))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    ref = requests[(requests["ts"] >= windows.reference_start) & (requests["ts"] < windows.reference_end)]
    cur = requests[(requests["ts"] >= windows.current_start) & (requests["ts"] < windows.current_end)]
    for ax, feature in zip(axes, features, strict=False):
        a, b = _numeric(ref, feature), _numeric(cur, feature)
        both = pd.concat([a, b])
        if not both.empty:
            lo, hi = float(both.min()), float(both.max())
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 31)
            ax.hist(a, bins=bins, alpha=0.6, density=True, label=f"reference (n={len(a)})")
            ax.hist(b, bins=bins, alpha=0.6, density=True, label=f"current (n={len(b)})")
            ax.legend(fontsize=6)
        ax.set_xlabel(f"{feature} ({UNITS.get(feature, 'value')})", fontsize=7)
        ax.set_ylabel("density", fontsize=7)
        ax.set_title(feature, fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    for ax in axes[len(features):]:
        ax.set_visible(False)
    fig.suptitle(f"Reference {windows.reference_start:%Y-%m-%d %H:%M} to {windows.reference_end:%Y-%m-%d %H:%M} "
                 f"against current {windows.current_start:%Y-%m-%d %H:%M} to {windows.current_end:%Y-%m-%d %H:%M} UTC",
                 fontsize=9)
    fig.tight_layout()
    return mark_simulated(fig, _simulated(requests))


SAMPLE_CHARS = 240


def redacted_samples(outputs: pd.DataFrame, split: datetime | None, per_side: int = 3) -> pd.DataFrame:
    """A few retained outputs before and after the change point (the latest ones otherwise), run
    through the capture redaction again and cut to SAMPLE_CHARS: stored texts are redacted when
    captured; redacting twice costs nothing and guards older rows."""
    from agent.capture.redact import redact

    if outputs.empty:
        return pd.DataFrame(columns=["period", "ts", "model", "text"])
    if split is None:
        picked = outputs.tail(per_side).assign(period="latest")
    else:
        before = outputs[outputs["ts"] < split].tail(per_side).assign(period="before")
        after = outputs[outputs["ts"] >= split].head(per_side).assign(period="after")
        picked = pd.concat([before, after])
    texts = [redact(str(t)) for t in picked["text"]]
    picked = picked.assign(text=[t if len(t) <= SAMPLE_CHARS else t[:SAMPLE_CHARS - 1] + "…" for t in texts])
    return picked[["period", "ts", "model", "text"]].reset_index(drop=True)
