"""UTC, the one time zone campwatch stores and reports in (ground floor: imports nothing of campwatch)."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(ts: datetime) -> datetime:
    """An aware UTC datetime: a naive one (SQLite hands them back, a setting may give one) is taken
    as UTC, an aware one is converted."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
