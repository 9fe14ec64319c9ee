"""The drift area's error (a CampwatchError, so the CLI maps it like the others)."""

from __future__ import annotations

from agent.errors import CampwatchError


class DriftError(CampwatchError):
    """A drift check could not be computed: the worker process failed, timed out or died, or
    Evidently's result lacked what campwatch reads from it."""
