"""SLI windows are written like PromQL ranges and checked against the scrape interval."""

from __future__ import annotations

import pytest

from agent.collectors.engine.windows import Window, parse_window, parse_windows
from agent.errors import ConfigError


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("1m", 60), ("5m", 300), ("1h", 3600), ("90s", 90)])
def test_durations_in_seconds_minutes_and_hours_are_accepted(text: str, seconds: float) -> None:
    assert parse_window(text) == Window(text, seconds)


@pytest.mark.parametrize("text", ["5", "5min", "1d", "0m", "-1m", "1.5m", "m", "", " 1m", "05m"])
def test_other_forms_are_rejected_naming_the_input(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration such as 30s, 1m, 5m or 1h") as caught:
        parse_window(text)
    assert repr(text) in str(caught.value)


def test_every_bad_window_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_windows(["1m", "1m", "10s", "bad"], interval_s=15.0)
    where = [p.where for p in caught.value.problems]
    assert where == ["engine.windows[1]", "engine.windows[2]", "engine.windows[3]"]


def test_no_windows_is_an_error() -> None:
    with pytest.raises(ConfigError, match="at least one window"):
        parse_windows([], interval_s=5.0)
