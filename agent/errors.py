"""The campwatch exception tree.

    CampwatchError
    ├── InvalidInput               bad input; carries every problem found (where, what was expected, origin)
    │   ├── ConfigError            a setting is missing or malformed
    │   │   └── BaselineError      an API baseline has no price (also a CostError): exit 2 like any bad setting
    │   └── FieldSpecError         a declarative data file (GPU fields, GPU peak table, metric map, price file)
    │                              is malformed
    ├── CollectorError             one collection attempt failed; the runner isolates it and stores and
    │   │                          exposes its `collected` gap, when it carries one
    │   ├── NvmlUnavailable        no NVML library or driver: GPU collection is off, the rest runs
    │   ├── DriverError            a GPU driver call failed; the subclass says what the GPU collector does:
    │   │   ├── NotSupported       the device (or driver) lacks the value: skip it on this GPU from now on
    │   │   ├── NoPermission       reading it needs privileges the agent lacks: skip it from now on, warn once
    │   │   ├── NoData             nothing new to report this time: skip it this cycle only
    │   │   └── GpuLost            the GPU cannot be read: mark it down, retry it with backoff
    │   └── EngineScrapeError      an engine /metrics endpoint failed (HTTP error, timeout, garbage); its
    │                              `collected` is the up=0 gap
    ├── PageError                  a body is not a metrics page campwatch can read (also a ValueError)
    ├── StoreError                 the database could not be opened, migrated, read or written
    │   └── StoreUnavailable       a write found the store unavailable; the writer keeps the rows
    ├── ListenError                a listener (/metrics, the proxy) could not bind its address at start
    ├── MissingExtra               a command needs an optional install (extra `drift` or `review`) that is absent
    ├── CostError                  a cost computation cannot be done with the data and settings given
    ├── DriftError                 a drift check could not be computed (worker failed, timed out or died;
    │                              Evidently's result lacked what campwatch reads)
    └── ReviewError                `campwatch review` could not render a report (a notebook cell failed,
                                   papermill/nbconvert missing): names the notebook, cell and error

Only `agent.cli` turns these into exit codes: InvalidInput, ListenError and MissingExtra 2,
StoreError 3, any other CampwatchError 1. Exceptions private to one module (the engine collector's
`_Problem`, the proxy's `_ClientGone` and `_BodyTooLarge`) are control flow inside it and never leave it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

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


class InvalidInput(CampwatchError):
    """Input campwatch cannot use, with every problem found at once (not just the first)."""

    heading: ClassVar[str] = "invalid input {source}"
    """The message's first line; `{source}` names the input (a settings source, a file)."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{self.heading.format(source=source)}:\n{lines}")


class ConfigError(InvalidInput):
    heading = "invalid configuration ({source})"


class FieldSpecError(InvalidInput):
    heading = "invalid data file {source}"


class CollectorError(CampwatchError):
    """A collection attempt failed; carries the collector's name and, when the collector has one,
    `collected`: the gap (up=0 rows and points) the runner stores and exposes for the attempt."""

    def __init__(self, collector: str, message: str, *, collected: Collected | None = None) -> None:
        self.collector = collector
        self.collected = collected
        super().__init__(f"{collector}: {message}")


class NvmlUnavailable(CollectorError):
    def __init__(self, message: str) -> None:
        super().__init__("gpu", message)


class DriverError(CollectorError):
    """A GpuDriver call failed (agent.collectors.gpu.driver); `detail` is the message without the
    collector's name."""

    def __init__(self, message: str) -> None:
        self.detail = message
        super().__init__("gpu", message)


class NotSupported(DriverError):
    """The device (or driver version) does not offer this value: skip it for this GPU from now on."""


class NoPermission(DriverError):
    """Reading this value needs privileges the agent lacks: skip it from now on, warn once."""


class NoData(DriverError):
    """Nothing to report this time (no new samples yet): skip it this cycle only."""


class GpuLost(DriverError):
    """The GPU cannot be read (fell off the bus, or an unexpected error): mark it down, retry later."""


class EngineScrapeError(CollectorError):
    """A failed scrape of one engine endpoint. The engine collector always sets `collected`: one
    up=0 row and the `campwatch_engine_up 0` point only, so the snapshot shows a gap, not stale values."""

    def __init__(self, server: str, message: str, *, collected: Collected | None = None) -> None:
        self.server = server
        super().__init__(f"engine[{server}]", message, collected=collected)


class PageError(CampwatchError, ValueError):
    """The body is not a metrics page campwatch can read; the message says what was expected."""


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


class DriftError(CampwatchError):
    """A drift check could not be computed: the worker process failed, timed out or died, or
    Evidently's result lacked what campwatch reads from it."""


class ReviewError(CampwatchError):
    """A review notebook could not be executed or exported; the message names the notebook, the
    failing cell and its error."""
