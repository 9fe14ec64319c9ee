"""GPU capacity review: how busy the fleet really is, by hour of day, and how much headroom is left."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from agent.review.plots import mark_simulated, percent_axis


def utilization_by_hour(gpu: pd.DataFrame) -> pd.DataFrame:
    """Mean and p95 GPU utilization by UTC hour of day, over every GPU-minute given."""
    if gpu.empty:
        return pd.DataFrame(columns=["hour", "mean", "p95", "gpu_minutes"])
    frame = gpu.dropna(subset=["utilization_avg"]).assign(hour=lambda f: f["minute"].dt.hour)
    grouped = frame.groupby("hour")["utilization_avg"]
    return pd.DataFrame({"mean": grouped.mean(), "p95": grouped.quantile(0.95),
                         "gpu_minutes": grouped.size()}).reset_index()


def capacity_summary(gpu: pd.DataFrame) -> dict[str, float]:
    """Fleet-level figures: GPU-hours observed, mean utilization, share of minutes saturated (>95 %),
    share idle (<5 %), energy in kWh and mean power."""
    if gpu.empty:
        return {"gpu_hours": 0.0, "mean_utilization": float("nan"), "saturated_share": float("nan"),
                "idle_share": float("nan"), "energy_kwh": 0.0, "mean_power_watts": float("nan")}
    util = gpu["utilization_avg"].dropna()
    return {
        "gpu_hours": len(gpu) / 60.0,
        "mean_utilization": float(util.mean()),
        "saturated_share": float((util > 0.95).mean()),
        "idle_share": float((util < 0.05).mean()),
        "energy_kwh": float(gpu["energy_joules"].fillna(0).sum() / 3.6e6),
        "mean_power_watts": float(gpu["power_avg_watts"].dropna().mean()),
    }


def utilization_figure(gpu: pd.DataFrame) -> Figure:
    by_hour = utilization_by_hour(gpu)
    fig = Figure(figsize=(9, 3.5))
    ax = fig.add_subplot()
    if not by_hour.empty:
        ax.bar(by_hour["hour"], by_hour["mean"], label="mean", color="#4c78a8")
        ax.plot(by_hour["hour"], by_hour["p95"], "o-", color="#f58518", label="p95")
    ax.set_xlabel("hour of day (UTC)")
    ax.set_ylabel("GPU utilization (% of time busy)")
    ax.set_ylim(0, 1.05)
    percent_axis(ax)
    ax.set_title("GPU utilization by hour of day")
    ax.legend(loc="upper left")
    return mark_simulated(fig, bool(gpu["simulated"].any()) if "simulated" in gpu and not gpu.empty else False)
