"""What every review figure shares: currency and percent axes, and the "SIMULATED" watermark on
figures drawn from simulated data."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

WATERMARK = "SIMULATED"
LOG_SCALE_SPAN = 100.0
"""A currency axis goes logarithmic only when its largest value is this many times its smallest."""


def usd(value: float, _pos: object = None) -> str:
    if abs(value) >= 100:
        return f"${value:,.0f}"
    return f"${value:,.2f}"


def currency_axis(ax: Axes, values: list[float]) -> None:
    """Linear with $ ticks unless the positive values span more than LOG_SCALE_SPAN."""
    positive = [v for v in values if v is not None and v > 0]
    if positive and max(positive) / min(positive) > LOG_SCALE_SPAN:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(usd))


def percent_axis(ax: Axes) -> None:
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))


def mark_simulated(fig: Figure, simulated: bool) -> Figure:
    """A large diagonal watermark across the figure when its data is simulated."""
    if simulated:
        fig.text(0.5, 0.5, WATERMARK, fontsize=44, color="#888888", alpha=0.25, rotation=20,
                 ha="center", va="center", zorder=0)
    return fig
