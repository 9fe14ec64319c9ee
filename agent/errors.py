"""The campwatch exception tree.

    CampwatchError
    ├── ConfigError            a setting is missing or malformed (carries every problem found)
    ├── FieldSpecError         a declarative data file (GPU fields, GPU peak table, metric map, price file) is malformed
    ├── CollectorError         one collection attempt failed; the runner isolates it
    │   ├── NvmlUnavailable    no NVML library or driver: GPU collection is off, the rest runs
    │   └── EngineScrapeError  an engine /metrics endpoint failed (HTTP error, timeout, garbage)
    ├── StoreError             the database could not be opened, migrated or written
    └── CostError              a cost computation cannot be done with the data and settings given

Only `agent.cli` turns these into exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.samples import Collected


class CampwatchError(Exception):
    """Base of every error campwatch raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One validation problem: where it is (a key path or file:line) and what was expected."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class ConfigError(CampwatchError):
    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({source}):\n{lines}")


class FieldSpecError(CampwatchError):
    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid data file {source}:\n{lines}")


class CollectorError(CampwatchError):
    """A collection attempt failed; carries the collector's name."""

    def __init__(self, collector: str, message: str) -> None:
        self.collector = collector
        super().__init__(f"{collector}: {message}")


class NvmlUnavailable(CollectorError):
    def __init__(self, message: str) -> None:
        super().__init__("gpu", message)


class EngineScrapeError(CollectorError):
    """`collected`, when set, holds the gap (up=0 rows and points) the runner stores and exposes."""

    collected: Collected | None = None

    def __init__(self, server: str, message: str) -> None:
        self.server = server
        super().__init__(f"engine[{server}]", message)


class StoreError(CampwatchError):
    pass


class CostError(CampwatchError):
    pass
