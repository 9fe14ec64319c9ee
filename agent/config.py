"""One typed settings object, resolved from defaults < TOML file < CAMPWATCH_* env < CLI flags.

Environment variables address nested keys with `__`: CAMPWATCH_STORE__URL, CAMPWATCH_GPU__INTERVAL_S.
Their values are parsed as JSON when they parse (numbers, booleans, lists), else taken as strings.
Every problem is reported at once with its key path (ConfigError)."""

from __future__ import annotations

import itertools
import json
import os
import socket
import tomllib
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from sqlalchemy.engine import make_url

from agent.errors import ConfigError, Problem

ENV_PREFIX = "CAMPWATCH_"
DEFAULT_DB_PATH = Path.home() / ".local" / "share" / "campwatch" / "campwatch.db"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    url: SecretStr = SecretStr(f"sqlite:///{DEFAULT_DB_PATH}")
    flush_interval_s: float = Field(1.0, gt=0, le=300)
    queue_max_rows: int = Field(100_000, ge=100)
    raw_retention_days: float = Field(7.0, gt=0)
    rollup_retention_days: float = Field(400.0, gt=0)
    maintenance_interval_s: float = Field(60.0, gt=0)

    @field_validator("url")
    @classmethod
    def _url_parses(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        try:
            url = make_url(raw)
        except Exception as exc:
            raise ValueError(f"expected an SQLAlchemy URL such as sqlite:///path.db or "
                             f"postgresql+psycopg://user@host/db, got {raw!r} ({exc})") from None
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError(f"expected a sqlite or postgresql URL, got backend {url.get_backend_name()!r}")
        return value


class GpuSettings(_Section):
    enabled: bool = True
    interval_s: float = Field(1.0, gt=0, le=3600)
    fields_file: str = ""
    """A fields CSV replacing the bundled one; empty means the bundled default."""
    top_processes: int = Field(10, ge=0, le=1000)
    """Per GPU, the processes using the most memory that get their own series; 0 turns them off."""
    proc_root: str = "/proc"
    """Where to read process names and container ids; the host's /proc when running in a container."""


class EngineSettings(_Section):
    urls: tuple[str, ...] = ()
    """/metrics URLs of the model servers (vLLM, SGLang, TGI)."""
    interval_s: float = Field(5.0, gt=0, le=3600)
    timeout_s: float | None = Field(None, gt=0)
    """Scrape timeout; default 80 % of the interval, and always shorter than it."""
    windows: tuple[str, ...] = ("1m", "5m")

    @field_validator("urls")
    @classmethod
    def _http_urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"expected http(s):// URLs of /metrics endpoints, got {url!r}")
        return urls

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> EngineSettings:
        if self.timeout_s is not None and self.timeout_s >= self.interval_s:
            raise ValueError(f"timeout_s ({self.timeout_s}) must be shorter than interval_s ({self.interval_s})")
        return self

    @property
    def effective_timeout_s(self) -> float:
        return self.timeout_s if self.timeout_s is not None else 0.8 * self.interval_s


class MetricsSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(9400, ge=0, le=65535)
    enabled: bool = True


class ProxySettings(_Section):
    listen: str = ""
    """HOST:PORT to accept OpenAI-compatible requests on; empty disables the proxy."""
    upstream: str = ""
    """Base URL of the model server, e.g. http://127.0.0.1:8000."""
    timeout_s: float = Field(600.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    max_body_bytes: int = Field(32 * 1024 * 1024, gt=0)

    @model_validator(mode="after")
    def _both_or_neither(self) -> ProxySettings:
        if bool(self.listen) != bool(self.upstream):
            raise ValueError("listen and upstream go together: set both to enable the proxy, or neither")
        if self.listen:
            host, sep, port = self.listen.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
                raise ValueError(f"listen: expected HOST:PORT, got {self.listen!r}")
        if self.upstream and not self.upstream.startswith(("http://", "https://")):
            raise ValueError(f"upstream: expected an http(s):// base URL, got {self.upstream!r}")
        return self


class CaptureSettings(_Section):
    store_text: bool = False
    inject_usage: bool = True
    """Add stream_options.include_usage to streaming requests (and hide the extra chunk from the
    client) so every request has exact token counts; turn off for upstreams that reject it."""
    caller_salt: SecretStr = SecretStr("")
    """Salt for hashing API keys into caller labels; empty means a random per-install salt kept in
    caller_salt_file. Set it to keep labels stable across hosts of one fleet."""
    caller_salt_file: str = ""
    """Where the per-install salt lives; empty means caller-salt beside the default database."""
    text_sample_ratio: float = Field(0.05, ge=0, le=1)
    text_retention_days: float = Field(3.0, gt=0)
    refusal_phrases: tuple[str, ...] = (
        "i can't help with", "i cannot help with", "i can't assist", "i cannot assist",
        "i'm sorry, but", "i am sorry, but", "as an ai", "i'm unable to", "i am unable to",
    )
    team_header: str = "X-Team"
    """Request header whose value the proxy records as the request's team (cost attribution);
    empty turns it off. cost.teams maps values (or caller hashes) to team names."""


class DriftSettings(_Section):
    enabled: bool = True
    interval_s: float = Field(3600.0, gt=0)
    reference_days: float = Field(7.0, gt=0)
    current_hours: float = Field(24.0, gt=0)
    min_rows: int = Field(100, ge=10)
    max_rows: int = Field(5000, ge=100)
    reference_start: datetime | None = None
    reference_end: datetime | None = None
    """A pinned reference period (UTC unless an offset is given) replacing the rolling
    reference_days window; set both or neither. store.raw_retention_days must still cover it."""

    @field_validator("reference_start", "reference_end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _consistent(self) -> DriftSettings:
        if self.min_rows > self.max_rows:
            raise ValueError(f"min_rows ({self.min_rows}) must not exceed max_rows ({self.max_rows}): "
                             "a sampled window could never be large enough")
        if (self.reference_start is None) != (self.reference_end is None):
            raise ValueError("reference_start and reference_end go together: set both to pin a reference "
                             "period, or neither")
        if self.reference_start is not None and self.reference_end is not None \
                and self.reference_start >= self.reference_end:
            raise ValueError(f"reference_start ({self.reference_start.isoformat()}) must be before "
                             f"reference_end ({self.reference_end.isoformat()})")
        return self


class PricingChange(_Section):
    """A dated change of some pricing inputs: applies from `effective_from` (00:00 UTC) on, never
    before. Fields left out keep the value in force before the change."""

    effective_from: date
    kind: Literal["hourly", "owned"] | None = None
    gpu_hourly_usd: Decimal | None = Field(None, ge=0)
    purchase_usd: Decimal | None = Field(None, ge=0)
    amortization_months: int | None = Field(None, gt=0)
    electricity_usd_per_kwh: Decimal | None = Field(None, ge=0)
    pue: Decimal | None = Field(None, ge=1)
    energy_billed_separately: bool | None = None


def _dated_in_order(changes: tuple[Any, ...], what: str) -> None:
    days = [c.effective_from for c in changes]
    for a, b in itertools.pairwise(days):
        if b <= a:
            raise ValueError(f"{what}: expected effective_from dates in increasing order, got {a} then {b}")


class PricingSettings(_Section):
    """How one host (or pool) is paid for. `kind` chooses which fields apply. `changes` are dated
    price changes (e.g. a new GPU rate from 2026-08-15); the fields above are what applied before
    the first one."""

    kind: Literal["hourly", "owned"] = "hourly"
    gpu_hourly_usd: Decimal = Field(Decimal("2.50"), ge=0)
    """hourly: the rate per GPU-hour (on-demand, reserved or spot)."""
    purchase_usd: Decimal = Field(Decimal("0"), ge=0)
    """owned: the purchase price of the whole host."""
    amortization_months: int = Field(36, gt=0)
    electricity_usd_per_kwh: Decimal = Field(Decimal("0.15"), ge=0)
    pue: Decimal = Field(Decimal("1.3"), ge=1)
    energy_billed_separately: bool = False
    """hourly: set when the rate excludes power (colocation); owned hosts always pay energy."""
    changes: tuple[PricingChange, ...] = ()

    @model_validator(mode="after")
    def _changes_in_order(self) -> PricingSettings:
        _dated_in_order(self.changes, "changes")
        return self

    def on(self, day: date) -> PricingSettings:
        """The pricing in force on `day`: every change with effective_from <= day applied in order."""
        values = self.model_dump(exclude={"changes"})
        for change in self.changes:
            if change.effective_from > day:
                break
            values.update({k: v for k, v in change.model_dump(exclude={"effective_from"}).items() if v is not None})
        return PricingSettings(**values)


def _dated_value(value: Decimal, changes: tuple[DatedAmount, ...], day: date) -> Decimal:
    for change in changes:
        if change.effective_from > day:
            break
        value = change.value
    return value


class DatedAmount(_Section):
    """A value in force from `effective_from` (00:00 UTC) on."""

    effective_from: date
    value: Decimal = Field(ge=0)


class DatedDiscount(_Section):
    effective_from: date
    discount: Decimal = Field(ge=0, lt=1)


class BaselineSettings(_Section):
    provider: str
    model: str
    discount: Decimal = Field(Decimal("0"), ge=0, lt=1)
    discount_changes: tuple[DatedDiscount, ...] = ()
    """Dated discount changes (a new contract): each applies from its effective_from on."""

    @model_validator(mode="after")
    def _changes_in_order(self) -> BaselineSettings:
        _dated_in_order(self.discount_changes, "discount_changes")
        return self

    def discount_on(self, day: date) -> Decimal:
        value = self.discount
        for change in self.discount_changes:
            if change.effective_from > day:
                break
            value = change.discount
        return value


class PlanQuarter(_Section):
    quarter: str
    """e.g. 2026-Q4"""
    tokens_per_month: int = Field(ge=0)
    cost_per_month_usd: Decimal = Field(ge=0)

    @field_validator("quarter")
    @classmethod
    def _quarter_form(cls, value: str) -> str:
        year, sep, q = value.partition("-Q")
        if not (sep and year.isdigit() and q in {"1", "2", "3", "4"}):
            raise ValueError(f"expected a quarter like 2026-Q4, got {value!r}")
        return value


class CostSettings(_Section):
    pricing: PricingSettings = PricingSettings()
    pools: dict[str, PricingSettings] = {}
    """Per-host pricing overriding `pricing`, keyed by host name."""
    overhead_usd_per_month: Decimal = Field(Decimal("0"), ge=0)
    overhead_changes: tuple[DatedAmount, ...] = ()
    """Dated changes of overhead_usd_per_month, each applying from its effective_from on."""
    fleet_overhead_usd_per_month: Decimal = Field(Decimal("0"), ge=0)
    """Overhead of the whole fleet, declared once (not per sidecar): each hour's share (a 730 h month)
    is split among the hosts measured in that hour in proportion to their GPU-seconds held."""
    fleet_overhead_changes: tuple[DatedAmount, ...] = ()
    baselines: tuple[BaselineSettings, ...] = (
        BaselineSettings(provider="openai", model="gpt-4o"),
        BaselineSettings(provider="openai", model="gpt-5"),
        BaselineSettings(provider="anthropic", model="claude-sonnet-4-5"),
        BaselineSettings(provider="deepseek", model="deepseek-chat"),
    )
    price_file: str = ""
    """A local TOML price file overriding genai-prices entries, each with as_of and source."""
    at_risk_margin: float = Field(0.2, ge=0, lt=1)
    regulated_data: bool = False
    plan: tuple[PlanQuarter, ...] = ()
    interval_s: float = Field(300.0, gt=0)
    output_token_weight: Decimal = Field(Decimal("4"), gt=0)
    """How many input tokens one output token counts as when the self-hosted cost is split into
    input and output $/Mtok (4 is the output:input price ratio common to API price lists)."""
    gap_factor: float = Field(3.0, gt=1)
    """A spacing between two samples longer than gap_factor x the typical spacing is a data gap."""
    teams: dict[str, str] = {}
    """Showback: a caller hash (the salted API-key hash in request_records.caller) or a team header
    value (capture.team_header) -> team name. A header value not listed is the team name itself."""
    team_budgets_usd_per_month: dict[str, Decimal] = {}
    """Monthly budget per team (allocation basis), exported with the month's spend and run rate."""
    min_verdict_hours: float = Field(1.0, ge=0)
    """No verdict below this many hours of GPU telemetry observed (wall hours held)."""
    min_verdict_tokens: int = Field(100_000, ge=0)
    """No verdict below this many tokens served in the window."""

    @model_validator(mode="after")
    def _overhead_in_order(self) -> CostSettings:
        _dated_in_order(self.overhead_changes, "overhead_changes")
        _dated_in_order(self.fleet_overhead_changes, "fleet_overhead_changes")
        return self

    def overhead_on(self, day: date) -> Decimal:
        return _dated_value(self.overhead_usd_per_month, self.overhead_changes, day)

    def fleet_overhead_on(self, day: date) -> Decimal:
        return _dated_value(self.fleet_overhead_usd_per_month, self.fleet_overhead_changes, day)


class OtlpSettings(_Section):
    endpoint: str = ""
    """OTLP/HTTP metrics endpoint, e.g. http://collector:4318/v1/metrics; empty disables export."""
    interval_s: float = Field(60.0, gt=0)
    headers: dict[str, SecretStr] = {}


class Settings(_Section):
    host: str = Field(default_factory=socket.gethostname)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    store: StoreSettings = StoreSettings()
    gpu: GpuSettings = GpuSettings()
    engine: EngineSettings = EngineSettings()
    metrics: MetricsSettings = MetricsSettings()
    proxy: ProxySettings = ProxySettings()
    capture: CaptureSettings = CaptureSettings()
    drift: DriftSettings = DriftSettings()
    cost: CostSettings = CostSettings()
    otlp: OtlpSettings = OtlpSettings()

    @field_validator("host")
    @classmethod
    def _host_nonempty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected a non-empty host name")
        return value


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        path = [part.lower() for part in key[len(ENV_PREFIX):].split("__") if part]
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return tree


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [Problem(str(path), f"cannot read the file: {exc.strerror}")]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [Problem(str(path), f"expected TOML: {exc}")]) from None


def load_settings(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve settings. `overrides` (from CLI flags) is a nested dict like {"store": {"url": ...}}."""
    env = os.environ if environ is None else environ
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = env[ENV_PREFIX + "CONFIG"]
    data: dict[str, Any] = _read_file(Path(path)) if path else {}
    data = _merge(data, _env_overrides(env))
    data = _merge(data, overrides or {})
    source = str(path) if path else "defaults + environment"
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(".".join(str(p) for p in err["loc"]) or "(top level)", _describe(err))
            for err in exc.errors()
        ]
        raise ConfigError(source, problems) from None


def _describe(err: Mapping[str, Any]) -> str:
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return "unknown key (check the spelling; see `campwatch check-config --help`)"
    if "input" in err and err["type"] not in {"missing"}:
        return f"{message} (got {err['input']!r})"
    return message


def masked(settings: Settings) -> dict[str, Any]:
    """The resolved settings as plain data with secrets (and DB passwords) masked."""
    data = settings.model_dump(mode="json")
    url = make_url(settings.store.url.get_secret_value())
    data["store"]["url"] = url.render_as_string(hide_password=True)
    data["otlp"]["headers"] = {k: "**********" for k in settings.otlp.headers}
    return data
