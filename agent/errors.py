"""The campwatch exception tree.

    CampwatchError
    ├── ConfigError            a setting is missing or malformed (carries every problem found)
    │   └── BaselineError      an API baseline has no price (also a CostError): exit 2 like any bad setting
    ├── FieldSpecError         a declarative data file (GPU fields, GPU peak table, metric map, price file) is malformed
    ├── CollectorError         one collection attempt failed; the runner isolates it
    │   ├── NvmlUnavailable    no NVML library or driver: GPU collection is off, the rest runs
    │   └── EngineScrapeError  an engine /metrics endpoint failed (HTTP error, timeout, garbage)
    ├── StoreError             the database could not be opened, migrated or written
    │   └── StoreUnavailable   a write found the store unavailable; the writer keeps the rows
    ├── ListenError            a listener (/metrics, the proxy) could not bind its address at start
    ├── MissingExtra           a command needs an optional install (extra `drift` or `review`) that is absent
    ├── CostError              a cost computation cannot be done with the data and settings given
    └── ReviewError            `campwatch review` could not render a report (a notebook cell failed,
                               papermill/nbconvert missing): names the notebook, cell and error

Only `agent.cli` turns these into exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.samples import Collected


class CampwatchError(Exception):
    """Base of every error campwatch raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One validation problem: where it is (a key path or file:line), what was expected, and where
    the value came from (`origin`: FILE:LINE, a CAMPWATCH_* variable, a flag, or "default")."""

    where: str
    message: str
    origin: str = ""

    def __str__(self) -> str:
        return f"{self.where} ({self.origin}): {self.message}" if self.origin else f"{self.where}: {self.message}"


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


class StoreUnavailable(StoreError):
    """Inside agent.store.writer only: a write failed for a reason that is not the rows' content
    (connection lost, timeout, disk full, locked). Carries the cause and the batches not written."""

    def __init__(self, cause: BaseException, remaining: list[Any]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.remaining = remaining


class CostError(CampwatchError):
    pass


class BaselineError(ConfigError, CostError):
    """Configured API baselines that cannot be priced: a configuration problem (exit 2) that cost
    code may still catch as a CostError."""


class MissingExtra(CampwatchError):
    """A command needs packages of an optional extra that is not installed (exit 2); the message
    names the extra, the missing modules and the pip command."""

    def __init__(self, extra: str, what: str, missing: Sequence[str]) -> None:
        self.extra = extra
        self.missing = tuple(missing)
        super().__init__(f"{what} needs the '{extra}' extra (missing: {', '.join(missing)}); install it with "
                         f"pip install 'campwatch[{extra}]' (a checkout: make test, or pip install -e '.[{extra}]')")


class ListenError(CampwatchError):
    """A port could not be bound at start: fatal (exit 2), the message names the setting,
    host:port and the reason."""

    def __init__(self, setting: str, host: str, port: int, reason: str) -> None:
        self.setting = setting
        self.host = host
        self.port = port
        self.reason = reason
        shown = f"[{host}]" if ":" in host else host
        super().__init__(f"{setting}: cannot listen on {shown}:{port}: {reason}")


class ReviewError(CampwatchError):
    """A review notebook could not be executed or exported; the message names the notebook, the
    failing cell and its error."""
