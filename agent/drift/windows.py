"""The two time windows a drift check compares: the current window (the last `current_hours` up to
now) and the reference window (the `reference_days` before it, or a pinned period)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.config import DriftSettings
from agent.utc import as_utc


@dataclass(frozen=True, slots=True)
class Windows:
    """Half-open intervals [start, end). `pinned` is true when the reference comes from settings."""

    reference_start: datetime
    reference_end: datetime
    current_start: datetime
    current_end: datetime
    pinned: bool = False


def drift_windows(settings: DriftSettings, now: datetime) -> Windows:
    """A pinned reference that runs into the current window is cut at the current window's start,
    so no request is ever on both sides."""
    now = as_utc(now)
    current_start = now - timedelta(hours=settings.current_hours)
    if settings.reference_start is not None and settings.reference_end is not None:
        start = as_utc(settings.reference_start)
        end = min(as_utc(settings.reference_end), current_start)
        return Windows(start, max(end, start), current_start, now, pinned=True)
    return Windows(current_start - timedelta(days=settings.reference_days), current_start, current_start, now)
