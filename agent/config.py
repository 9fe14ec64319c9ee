"""One typed settings object, resolved from defaults < TOML file < CAMPWATCH_* env < CLI flags.

Environment variables address nested keys with `__`: CAMPWATCH_STORE__URL, CAMPWATCH_GPU__INTERVAL_S.
Their values are parsed as JSON when they parse (numbers, booleans, lists), else taken as strings.
Every problem is reported at once with its key path (ConfigError)."""

from __future__ import annotations

import difflib
import itertools
import json
import os
import re
import socket
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url

from agent.errors import ConfigError, Problem
from agent.passwords import parse_hash
from agent.periods import parse_quarter, quarter_label
from agent.urls import display_url, scrub_text, url_secrets
from agent.utc import as_utc

ENV_PREFIX = "CAMPWATCH_"
DEFAULT_DB_PATH = Path.home() / ".local" / "share" / "campwatch" / "campwatch.db"


class _Section(BaseModel):
    # attribute docstrings become field descriptions, which `campwatch config keys` prints
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class StoreSettings(_Section):
    url: SecretStr = SecretStr(f"sqlite:///{DEFAULT_DB_PATH}")
    flush_interval_s: float = Field(1.0, gt=0, le=300)
    queue_max_rows: int = Field(100_000, ge=100)
    raw_retention_days: float = Field(7.0, gt=0)
    rollup_retention_days: float = Field(400.0, gt=0)
    maintenance_interval_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0, le=300)
    """PostgreSQL: give up opening a connection after this long."""
    statement_timeout_s: float = Field(30.0, gt=0)
    """PostgreSQL: the server cancels a statement running longer (statement_timeout)."""
    lock_timeout_s: float = Field(10.0, gt=0)
    """PostgreSQL: the server gives up waiting for a lock after this long (lock_timeout)."""
    busy_timeout_s: float = Field(5.0, ge=0)
    """SQLite: wait this long for another writer's lock (busy_timeout)."""
    spool_dir: str = ""
    """Where rows wait while the store is down; empty means a `spool` folder beside the SQLite
    database, or ~/.local/share/campwatch/spool for PostgreSQL."""
    spool_max_bytes: int = Field(1 << 30, ge=1 << 20)
    """Spool size cap; past it the oldest segment is dropped (campwatch_dropped_total{reason="spool_full"})."""
    spool_after_s: float = Field(30.0, ge=0)
    """Queued rows go to the spool once flushes have failed this long..."""
    spool_queue_fraction: float = Field(0.5, gt=0, le=1)
    """...or once a failing store leaves the queue this full (fraction of queue_max_rows)."""
    backoff_max_s: float = Field(30.0, gt=0)
    """Failed flushes are retried after 1, 2, 4 ... flush intervals, at most this long apart."""
    unhealthy_after_s: float = Field(60.0, gt=0)
    """/healthz answers 503 once the store has been unwritable this long."""

    @field_validator("url")
    @classmethod
    def _url_parses(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if raw.startswith(("postgres://", "postgres+")):  # Heroku's and libpq's spelling; SQLAlchemy 1.4+ dropped it
            raw = "postgresql" + raw.removeprefix("postgres")
            value = SecretStr(raw)
        try:
            url = make_url(raw)
        except Exception as exc:
            raise ValueError(f"expected an SQLAlchemy URL such as sqlite:///path.db or "
                             f"postgresql+psycopg://user@host/db, got {display_url(raw)!r} "
                             f"({scrub_text(str(exc), url_secrets(raw))})") from None
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
    devices: tuple[str, ...] = ()
    """GPUs to read (and cost): indices, GPU-... UUIDs or MIG-... UUIDs; empty means the devices in
    NVIDIA_VISIBLE_DEVICES, else CUDA_VISIBLE_DEVICES, else every GPU NVML shows."""


def _http_url(expected: str, *, optional: bool = False) -> AfterValidator:
    """A field check: an http(s):// URL (`expected` says what for); with `optional`, empty passes."""

    def check(url: str) -> str:
        if url or not optional:
            check_http_url(url, expected)
        return url

    return AfterValidator(check)


MetricsUrl = Annotated[str, _http_url("an http(s):// URL of a /metrics endpoint")]
"""Validated one by one, so every bad URL of a list is reported with its position."""


class EngineSettings(_Section):
    urls: tuple[MetricsUrl, ...] = ()
    """/metrics URLs of the model servers (vLLM, SGLang, TGI)."""
    interval_s: float = Field(5.0, gt=0, le=3600)
    timeout_s: float | None = Field(None, gt=0)
    """Scrape timeout; default 80 % of the interval, and always shorter than it."""
    windows: tuple[str, ...] = ("1m", "5m")
    max_page_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    """A /metrics page larger than this is not read on (the scrape is a gap, up=0, naming the limit)."""
    max_series: int = Field(50_000, ge=100)
    """Samples (series) of the families campwatch reads, past which a page is refused (a gap, up=0):
    bounds what one page costs in memory and CPU."""
    max_models: int = Field(256, ge=1)
    """Distinct (model, engine core) pairs on a page past which it is refused (a gap, up=0): each
    pair is remembered over the SLI windows."""
    gpu_model: str = ""
    """GPU model the servers run on (e.g. "NVIDIA H100 80GB HBM3", as NVML names it), for MFU and
    memory-bandwidth utilization; empty: no utilization SLIs."""
    gpu_peaks_file: str = ""
    """CSV of GPU peak figures replacing the bundled gpu_peaks.csv (same columns)."""
    mfu_dtype: Literal["bf16", "fp8"] = "bf16"
    """Which dense tensor peak MFU divides by."""


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
    port: int = Field(18400, ge=0, le=65535)
    enabled: bool = True
    basic_auth_users: dict[str, SecretStr] = {}
    """user -> password hash (`campwatch hash-password`); when set, /metrics and /healthz need one."""
    bearer_token_file: str = ""
    """A file holding a token that /metrics and /healthz accept as `Authorization: Bearer <token>`."""
    tls_cert_file: str = ""
    """PEM certificate (chain) to serve /metrics over HTTPS; set with tls_key_file."""
    tls_key_file: str = ""

    @field_validator("basic_auth_users")
    @classmethod
    def _hashes_parse(cls, users: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for user, stored in users.items():
            if not user or ":" in user:
                raise ValueError(f"user names must be non-empty and hold no ':', got {user!r}")
            try:
                parse_hash(stored.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"{user}: {exc}") from None
        return users

    @model_validator(mode="after")
    def _files(self) -> MetricsSettings:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file go together: set both to serve HTTPS, or neither")
        for key in ("bearer_token_file", "tls_cert_file", "tls_key_file"):
            path = getattr(self, key)
            if path and not Path(path).is_file():
                raise ValueError(f"{key}: expected a readable file, got {path!r} (no such file)")
        return self


class ProxySettings(_Section):
    listen: str = ""
    """HOST:PORT to accept OpenAI-compatible requests on; empty disables the proxy."""
    upstream: Annotated[str, _http_url("an http(s):// base URL", optional=True)] = ""
    """Base URL of the model server, e.g. http://127.0.0.1:8000."""
    timeout_s: float = Field(600.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    max_body_bytes: int = Field(32 * 1024 * 1024, gt=0)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, listen: str) -> str:
        if listen:
            host, sep, port = listen.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
                raise ValueError("expected HOST:PORT")
        return listen

    @model_validator(mode="after")
    def _both_or_neither(self) -> ProxySettings:
        if bool(self.listen) != bool(self.upstream):
            raise ValueError("listen and upstream go together: set both to enable the proxy, or neither")
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
    max_sse_event_bytes: int = Field(1024 * 1024, ge=1024)
    """A streamed (SSE) event larger than this ends parsing for its stream: the rest passes through
    to the client unparsed, byte for byte, and the request record says sse_event_too_large."""
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
        return as_utc(value)

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


def _dated_value(value: Decimal, changes: tuple[DatedAmount | DatedDiscount, ...], day: date) -> Decimal:
    """`value`, or the last of the (date-ordered) changes in force on `day`."""
    for change in changes:
        if change.effective_from > day:
            break
        value = change.value if isinstance(change, DatedAmount) else change.discount
    return value


class DatedAmount(_Section):
    """A value in force from `effective_from` (00:00 UTC) on."""

    effective_from: date
    value: Decimal = Field(ge=0)


class DatedDiscount(_Section):
    effective_from: date
    discount: Decimal = Field(ge=0, lt=1)


class DatedTierDiscount(_Section):
    effective_from: date
    tier_discount: Decimal = Field(ge=-4, lt=1, allow_inf_nan=False)


ApiTier = Literal["standard", "batch", "flex", "priority"]


class BaselineSettings(_Section):
    provider: str
    model: str
    discount: Decimal = Field(Decimal("0"), ge=0, lt=1)
    discount_changes: tuple[DatedDiscount, ...] = ()
    """Dated discount changes (a new contract): each applies from its effective_from on."""
    token_ratio: Decimal = Field(Decimal("1"), gt=0, allow_inf_nan=False)
    """How many of the API's tokens one self-hosted token is worth (the API's tokenizer over the
    self-hosted model's on the same text, docs/cost.md "Fair comparison"): the API cost of the
    measured traffic is multiplied by it. 1: the same count."""
    tier: ApiTier = "standard"
    """The API service tier priced: standard, batch, flex or priority. genai-prices' own tier prices
    are used where it has them; elsewhere tier_discount is required."""
    tier_discount: Decimal | None = Field(None, ge=-4, lt=1, allow_inf_nan=False)
    """The tier's discount off the standard price where genai-prices has no price for the tier (0.5
    for a batch tier at half price; negative for a surcharge, -0.75 is 1.75x)."""
    tier_discount_changes: tuple[DatedTierDiscount, ...] = ()
    """Dated changes of tier_discount, each applying from its effective_from on."""

    @model_validator(mode="after")
    def _changes_in_order(self) -> BaselineSettings:
        _dated_in_order(self.discount_changes, "discount_changes")
        _dated_in_order(self.tier_discount_changes, "tier_discount_changes")
        if self.tier == "standard" and (self.tier_discount is not None or self.tier_discount_changes):
            raise ValueError("tier_discount applies to a tier other than standard: set tier (batch, flex or "
                             "priority) too, or drop tier_discount")
        return self

    def discount_on(self, day: date) -> Decimal:
        return _dated_value(self.discount, self.discount_changes, day)

    def tier_discount_on(self, day: date) -> Decimal | None:
        """The declared tier discount in force on `day`, or None where none is declared yet."""
        value = self.tier_discount
        for change in self.tier_discount_changes:
            if change.effective_from > day:
                break
            value = change.tier_discount
        return value


class PlanQuarter(_Section):
    quarter: str
    """e.g. 2026-Q4 (2026Q4 is read as the same and stored as 2026-Q4, the reports' spelling)"""
    tokens_per_month: int = Field(ge=0)
    cost_per_month_usd: Decimal = Field(ge=0)
    usd_per_gpu_hour: Decimal | None = Field(None, gt=0)
    """The all-in $ per GPU-hour held (GPU line, energy, overhead) the plan assumed: the price the
    review's variance against plan measures the price effect from. Unset: the quarter's price on its
    first day with data."""

    @field_validator("quarter")
    @classmethod
    def _quarter_form(cls, value: str) -> str:
        try:
            return quarter_label(*parse_quarter(value))
        except ValueError:
            raise ValueError(f"expected a quarter like 2026-Q4, got {value!r}") from None


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
    slo_ttft_p99_s: float = Field(2.0, gt=0)
    """Measured capacity (agent/cost/capacity.py): a saturated window counts only with its TTFT p99 within this."""
    slo_itl_p99_s: float = Field(0.2, gt=0)
    """... and its inter-token latency p99 within this."""
    capacity_window_s: float = Field(300.0, ge=30)
    """Length of the windows the engine history is cut into for the capacity estimate."""
    capacity_min_waiting: float = Field(1.0, gt=0)
    """A window is saturated (high load) when at least this many requests waited on average."""
    capacity_min_windows: int = Field(6, ge=1)
    """Fewer saturated windows within the SLOs than this: "not enough high-load data"."""
    capacity_days: float = Field(14.0, gt=0)
    """The capacity is estimated from the last this many days of the report window: it describes the
    deployment as it is now (an engine or model upgrade changes it), and bounds the engine rows read."""

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
    endpoint: Annotated[str, _http_url("an http(s):// OTLP/HTTP endpoint", optional=True)] = ""
    """OTLP/HTTP metrics endpoint, e.g. http://collector:4318/v1/metrics; empty disables export."""
    interval_s: float = Field(60.0, gt=0)
    headers: dict[str, SecretStr] = {}


class Settings(_Section):
    host: str = Field(default_factory=socket.gethostname)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    """text: one readable line per record; json: one JSON object per line (ts, level, logger, message)."""
    shutdown_grace_s: float = Field(10.0, gt=0, le=600)
    """From SIGTERM/SIGINT to exit, at most: streams in flight are cut and the last flush gives up
    (what is left goes to the spool) so that the process always ends within it."""
    switch_interval_s: float = Field(0.005, ge=0.0001, le=0.1)
    """CPython's GIL switch interval while the agent runs (sys.setswitchinterval; 0.005 is CPython's
    own): the longest the proxy's event loop waits for the GIL while another thread (the store
    writer's flush, a store job) runs Python code. 0.001 measured no difference in the proxy's p99
    on a shared machine (docs/benchmarks.md); benchmarks/bench_proxy.py --variant compares both."""
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


Origins = dict[tuple[str | int, ...], str]
"""Key path -> where its value came from: "FILE:LINE", an environment variable, or a flag."""


def _env_overrides(environ: Mapping[str, str], origins: Origins | None = None) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        path = [part.lower() for part in key[len(ENV_PREFIX):].split("__") if part]
        if not path:
            continue
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        node = tree
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # CAMPWATCH_GPU=1 and CAMPWATCH_GPU__X=2: the section wins
                child = node[part] = {}
            node = child
        node[path[-1]] = value
        if origins is not None:
            _claim(origins, tuple(path), key)
    return tree


def _claim(origins: Origins, path: tuple[str | int, ...], origin: str) -> None:
    """`path` now comes from `origin`; what a lower layer set beneath it no longer counts."""
    for known in [k for k in origins if len(k) > len(path) and k[:len(path)] == path]:
        del origins[known]
    origins[path] = origin


def _claim_tree(origins: Origins, tree: Mapping[str, Any], origin: Any, prefix: tuple[str, ...] = ()) -> None:
    """Every leaf of `tree` comes from `origin` (a string, or a callable of the dotted key)."""
    for key, value in tree.items():
        path = (*prefix, key)
        if isinstance(value, Mapping) and value:
            _claim_tree(origins, value, origin, path)
        else:
            _claim(origins, path, origin if isinstance(origin, str) else origin(".".join(path)))


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


_TABLE = re.compile(r"^\s*\[(\[)?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _dotted(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', text))


def _file_origins(path: Path, text: str) -> Origins:
    """Where each key of a TOML file is set, as FILE:LINE (tables of arrays counted: [[cost.baselines]]
    twice gives cost.baselines[0] and [1]). A best-effort line scan: a key it misses falls back to
    the file name."""
    origins: Origins = {}
    table: tuple[str | int, ...] = ()
    arrays: dict[tuple[str, ...], int] = {}
    in_multiline = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count('"""') % 2 == 1 or line.count("\'\'\'") % 2 == 1:
                in_multiline = False
            continue
        header = _TABLE.match(line)
        if header:
            names = _dotted(header.group(2))
            if header.group(1):  # [[array]]
                index = arrays[names] = arrays.get(names, -1) + 1
                table = (*names, index)
            else:
                table = names
            origins[table] = f"{path}:{lineno}"
            continue
        key = _KEY.match(line)
        if key:
            origins[(*table, *_dotted(key.group(1)))] = f"{path}:{lineno}"
            if line.count('"""') == 1 or line.count("\'\'\'") == 1:
                in_multiline = True
    return origins


def _read_file(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [Problem(str(path), f"cannot read the file: {exc.strerror}")]) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [Problem(str(path), f"expected TOML: {exc}")]) from None


def load_settings(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    flags: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve settings. `overrides` (from CLI flags) is a nested dict like {"store": {"url": ...}};
    `flags` names the flag each dotted key came from ({"store.url": "--db"}), for error messages.

    A ConfigError lists every problem at once, each with the key path and where its value came
    from (file:line, CAMPWATCH_* variable or flag; "default" for a built-in value)."""
    env = os.environ if environ is None else environ
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = env[ENV_PREFIX + "CONFIG"]
    origins: Origins = {}
    layers: list[str] = []
    data: dict[str, Any] = {}
    if path:
        data, text = _read_file(Path(path))
        origins.update(_file_origins(Path(path), text))
        _fill_file_origins(origins, data, str(path))
        layers.append(str(path))
    env_tree = _env_overrides(env, origins)
    if env_tree:
        layers.append("environment")
    data = _merge(data, env_tree)
    if overrides:
        names = flags or {}
        _claim_tree(origins, overrides, lambda dotted: names.get(dotted, "command line"))
        layers.append("command line")
        data = _merge(data, overrides)
    source = " + ".join(layers) or "defaults"
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(_where(err["loc"]), _describe(err), origin_of(origins, tuple(err["loc"])))
            for err in exc.errors()
        ]
        raise ConfigError(source, problems) from None


def _fill_file_origins(origins: Origins, data: Mapping[str, Any], fallback: str,
                       prefix: tuple[str | int, ...] = ()) -> None:
    """Keys the line scan missed (inline tables, odd quoting) still name the file."""
    for key, value in data.items():
        path = (*prefix, key)
        if path not in origins and not any(k[:len(path)] == path for k in origins):
            origins[path] = fallback
        if isinstance(value, Mapping):
            _fill_file_origins(origins, value, fallback, path)


def origin_of(origins: Origins, loc: tuple[str | int, ...]) -> str:
    """Where the value at `loc` came from: the nearest enclosing key with a known origin; for a
    section-wide check, the origins of the keys set beneath it; else "default"."""
    beneath = sorted({f"{_where(k)} from {v}" for k, v in origins.items() if len(k) > len(loc) and k[:len(loc)] == loc})
    if beneath:  # a check over a whole section: its values came from there (a table header set none)
        return "; ".join(beneath)
    for end in range(len(loc), 0, -1):
        found = origins.get(loc[:end])
        if found is not None:
            return found
    return "default"


def _where(loc: Sequence[str | int]) -> str:
    """("engine", "urls", 1) -> engine.urls[1]"""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"
_SECRET_KEYS = ({"store", "url"}, {"otlp", "headers"}, {"capture", "caller_salt"}, {"metrics", "basic_auth_users"})
"""Key paths whose raw input an error message never echoes."""


def _describe(err: Mapping[str, Any]) -> str:
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        loc = tuple(err["loc"])
        near = difflib.get_close_matches(str(loc[-1]), known_keys(loc[:-1]), n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        return f"unknown key ({hint}`campwatch config keys` lists every key)"
    parts = {str(part) for part in err["loc"]}
    secret = any(keys <= parts for keys in _SECRET_KEYS)
    if "input" in err and err["type"] not in {"missing"} and "got " not in message and not secret \
            and not isinstance(err["input"], Mapping):
        # shown once: not when the validator's message already says what it got, nor a whole section
        return scrub_text(f"{message} (got {err['input']!r})")
    return scrub_text(message)


def check_http_url(url: str, expected: str, *, where: str = "") -> None:
    """Raises ValueError unless `url` is http(s)://host[:port]...; the message shows the URL masked."""
    from urllib.parse import urlsplit

    shown = display_url(url)
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{where}expected {expected} (got {shown!r})")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(f"{where}expected {expected} with a port from 1 to 65535 (got {shown!r})") from None
    if not parts.hostname:
        raise ValueError(f"{where}expected {expected} with a host name (got {shown!r})")
    if port == 0:
        raise ValueError(f"{where}expected {expected} with a port from 1 to 65535 (got {shown!r})")


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold (URL passwords and tokens, header values, the caller salt),
    for the log filter that keeps them out of every line."""
    found = url_secrets(settings.store.url.get_secret_value())
    for url in (*settings.engine.urls, settings.proxy.upstream, settings.otlp.endpoint):
        found += url_secrets(url)
    found += [v.get_secret_value() for v in settings.otlp.headers.values()]
    found += [v.get_secret_value() for v in settings.metrics.basic_auth_users.values()]
    found.append(settings.capture.caller_salt.get_secret_value())
    for header in settings.otlp.headers.values():
        _scheme, _, token = header.get_secret_value().partition(" ")
        found.append(token)  # "Bearer <token>": the token alone too
    return [s for s in found if s]


def known_keys(loc: Sequence[str | int]) -> list[str]:
    """The keys the settings model accepts at `loc` (a section path), for did-you-mean hints."""
    model: Any = Settings
    keyed = False  # the next part is a key of a dict of sections (cost.pools.<host>)
    for part in loc:
        if isinstance(part, int) or keyed:
            keyed = False
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return []
        model = _section_type(info.annotation)
        if model is None:
            return []
        keyed = getattr(info.annotation, "__origin__", None) is dict
    return list(model.model_fields)


def _section_type(annotation: Any) -> Any:
    """The settings model inside an annotation (Section, tuple[Section, ...], dict[str, Section])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _section_type(arg)
        if found is not None:
            return found
    return None


def masked(settings: Settings) -> dict[str, Any]:
    """The resolved settings as plain data with secrets (and DB passwords) masked."""
    data = settings.model_dump(mode="json")
    data["store"]["url"] = display_url(settings.store.url.get_secret_value())
    data["engine"]["urls"] = [display_url(u) for u in settings.engine.urls]
    data["proxy"]["upstream"] = display_url(settings.proxy.upstream)
    data["otlp"]["endpoint"] = display_url(settings.otlp.endpoint)
    data["otlp"]["headers"] = {k: "**********" for k in settings.otlp.headers}
    data["metrics"]["basic_auth_users"] = {k: "**********" for k in settings.metrics.basic_auth_users}
    return data
