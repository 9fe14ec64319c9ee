"""GPU capacity review: how busy the fleet really is, by hour of day, and how much headroom is left."""

from __future__ import annotations

import math

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


def tokens_per_busy_gpu_hour(gpu: pd.DataFrame, served: pd.DataFrame) -> float:
    """Tokens served per GPU-hour of busy time (utilization-weighted GPU-minutes): the fleet's
    throughput when busy, the figure a what-if scales."""
    if gpu.empty or served.empty:
        return float("nan")
    busy_hours = float(gpu["utilization_avg"].fillna(0).sum()) / 60.0
    tokens = float((served["prompt_tokens"].fillna(0) + served["generation_tokens"].fillna(0)).sum())
    return tokens / busy_hours if busy_hours > 0 else float("nan")


def what_if(tokens_per_month: float, per_busy_gpu_hour: float, target_utilization: float,
            gpu_hourly_usd: float, hours_per_month: float = 730.0) -> dict[str, float]:
    """GPUs needed to serve `tokens_per_month` with each GPU busy `target_utilization` of the time,
    and the self-hosted $/Mtok (GPU rent only) at that fleet size."""
    if not 0 < target_utilization <= 1:
        raise ValueError(f"target utilization must be in (0, 1], got {target_utilization}")
    if not per_busy_gpu_hour > 0:
        return {"gpus_needed": float("nan"), "gpus_rounded_up": float("nan"), "usd_per_mtok": float("nan")}
    gpus = tokens_per_month / (hours_per_month * target_utilization * per_busy_gpu_hour)
    whole = math.ceil(gpus) if gpus > 0 else 0
    cost = whole * hours_per_month * gpu_hourly_usd
    return {"gpus_needed": gpus, "gpus_rounded_up": float(whole),
            "usd_per_mtok": cost / (tokens_per_month / 1e6) if tokens_per_month > 0 else float("nan")}
