"""A monotonic clock that moves only when the test moves it."""

from __future__ import annotations


class FakeClock:
    """Seconds for a `clock=` parameter: `now` from `start`, changed by `advance` (or set directly)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
