"""SLI windows: "30s", "1m", "5m", "1h" and the like, checked against the scrape interval."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.errors import ConfigError, Problem
from agent.periods import duration_seconds

_EXPECTED = "expected a duration such as 30s, 1m, 5m or 1h (a whole number and s, m or h)"


@dataclass(frozen=True, slots=True)
class Window:
    """A trailing time window; `label` is exported as the `window` label."""

    label: str
    seconds: float


def parse_window(text: str) -> Window:
    """One window from its label; ValueError naming the input when it is not of the form <n>s|m|h."""
    try:
        if text != text.strip():  # the label is exported as written
            raise ValueError(text)
        return Window(text, duration_seconds(text, units="smh", whole=True))
    except ValueError:
        raise ValueError(f"{_EXPECTED}, got {text!r}") from None


def parse_windows(texts: Sequence[str], interval_s: float, where: str = "engine.windows") -> tuple[Window, ...]:
    """Every configured window, or one ConfigError listing each bad entry.

    A window must hold at least two scrapes, so it may not be shorter than the scrape interval."""
    problems: list[Problem] = []
    windows: list[Window] = []
    seen: set[float] = set()
    if not texts:
        problems.append(Problem(where, "expected at least one window, e.g. [\"1m\", \"5m\"]"))
    for i, text in enumerate(texts):
        key = f"{where}[{i}]"
        try:
            window = parse_window(text)
        except ValueError as exc:
            problems.append(Problem(key, str(exc)))
            continue
        if window.seconds < interval_s:
            problems.append(Problem(key, f"window {text} is shorter than the scrape interval ({interval_s:g}s), "
                                         "so it could never hold two scrapes"))
            continue
        if window.seconds in seen:
            problems.append(Problem(key, f"window {text} is listed twice"))
            continue
        seen.add(window.seconds)
        windows.append(window)
    if problems:
        raise ConfigError("engine settings", problems)
    return tuple(windows)
