"""Drift investigation: what moved, when, and by how much, from the stored drift results and the
per-request descriptors the proxy recorded (no text unless capture.store_text kept some)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from matplotlib.figure import Figure

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
