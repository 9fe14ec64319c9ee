"""The `campwatch` command. The only place exceptions become exit codes:
0 ok, 1 runtime error, 2 bad configuration or input (a port that cannot be bound included),
3 store unavailable."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import cache, wraps
from typing import TYPE_CHECKING, Any, TypeVar

import click

from agent import __version__
from agent.config import Settings, load_settings, masked, secret_values
from agent.errors import CampwatchError, ConfigError, InvalidInput, ListenError, MissingExtra, Problem, StoreError
from agent.urls import SecretScrubber, scrub_text

if TYPE_CHECKING:
    from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])


@cache
def _consoles() -> tuple[Console, Console]:
    """(stdout, stderr) consoles, made on first use: `campwatch run` never prints through rich, and
    not importing it keeps it out of the sidecar's resident memory."""
    from rich.console import Console

    # Piped output (CI logs, files) gets a wide fixed width so tables are not truncated to 80 columns.
    return (Console(width=None if sys.stdout.isatty() else 160),
            Console(stderr=True, width=None if sys.stderr.isatty() else 160))


def _console() -> Console:
    return _consoles()[0]


def _err_console() -> Console:
    return _consoles()[1]


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _exits(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (InvalidInput, ListenError, MissingExtra) as exc:
            _print_error("error", exc)
            sys.exit(2)
        except StoreError as exc:
            _print_error("store error", exc)
            sys.exit(3)
        except CampwatchError as exc:
            _print_error("error", exc)
            sys.exit(1)
    return wrapper  # type: ignore[return-value]


def _print_error(kind: str, exc: BaseException) -> None:
    # never wrapped by the console: a message's command, URL or path stays on one line to copy or grep
    _err_console().print(f"[bold red]{kind}:[/] {escape(scrub_text(str(exc)))}", highlight=False, soft_wrap=True)


def _logging(level: str, log_format: str = "text", settings: Settings | None = None) -> None:
    from agent.loglimit import LineCap
    from agent.logs import log_handler

    logging.basicConfig(level=level, handlers=[log_handler(log_format, sys.stderr)])
    # Every line, ours and the libraries', is capped in length and passes the scrubber: URLs lose
    # their passwords and tokens, and no secret value from the settings is written.
    scrubber = SecretScrubber(secret_values(settings) if settings is not None else ())
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, LineCap) for f in handler.filters):
            handler.addFilter(LineCap())
        handler.addFilter(scrubber)


def _run_bounded(main_coro: Callable[[], Any], grace_s: float) -> None:
    """asyncio.run, except that worker threads still blocked after the shutdown (a database that
    does not answer) do not hold the exit: the loop gets a fresh executor to shut down, and if such
    threads remain the process ends with os._exit once logs are flushed (their rows went to the spool)."""
    async def go() -> None:
        executor = ThreadPoolExecutor(thread_name_prefix="campwatch-worker")
        loop = asyncio.get_running_loop()
        loop.set_default_executor(executor)
        try:
            await main_coro()
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            loop.set_default_executor(ThreadPoolExecutor(max_workers=1))

    asyncio.run(go())
    blocked = [t.name for t in threading.enumerate()
               if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    if blocked:
        logging.getLogger("agent.cli").warning(
            "exiting with %d worker threads still blocked (%s) after the %gs shutdown grace",
            len(blocked), ", ".join(sorted(blocked)), grace_s)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '12h', '30d', '2w' -> timedelta; raises ConfigError naming the input."""
    from agent.periods import parse_duration as parse

    return parse(text, "--since")


FLAGS: dict[str, str] = {
    "store.url": "--db", "engine.urls": "--engine-url", "metrics.host": "--metrics-host",
    "metrics.port": "--metrics-port", "gpu.interval_s": "--gpu-interval", "engine.interval_s": "--engine-interval",
    "proxy.listen": "--proxy-listen", "proxy.upstream": "--proxy-upstream", "host": "--host",
    "gpu.enabled": "--no-gpu", "log_level": "--log-level", "log_format": "--log-format",
}
"""Settings key -> the flag that sets it, so a bad flag value is reported as that flag's."""


def _settings(config: str | None, overrides: dict[str, Any]) -> Settings:
    return load_settings(config, overrides=overrides, flags=FLAGS)


def _put(tree: dict[str, Any], path: str, value: Any) -> None:
    if value is None or value == ():
        return
    *parents, leaf = path.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="campwatch")
def main() -> None:
    """campwatch: GPU, serving-engine, request and cost telemetry for self-hosted LLMs."""


@main.command()
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option("--db", "db", help="SQLAlchemy URL, e.g. sqlite:///campwatch.db or postgresql://host/db.")
@click.option("--engine-url", "engine_urls", multiple=True, help="/metrics URL of a model server (repeatable).")
@click.option("--metrics-host", help="Address to serve campwatch's /metrics on (default 127.0.0.1).")
@click.option("--metrics-port", type=int, help="Port to serve /metrics on (default 18400).")
@click.option("--gpu-interval", type=float, help="Seconds between GPU readings (default 1).")
@click.option("--engine-interval", type=float, help="Seconds between engine scrapes (default 5).")
@click.option("--proxy-listen", help="HOST:PORT for the OpenAI-compatible capture proxy.")
@click.option("--proxy-upstream", help="Model server base URL the proxy forwards to.")
@click.option("--host", "host_name", help="Host label on every row (default: the hostname).")
@click.option("--no-gpu", is_flag=True, help="Do not collect GPU telemetry.")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="Log level (default INFO; also log_level / CAMPWATCH_LOG_LEVEL).")
@click.option("--log-format", type=click.Choice(["text", "json"]),
              help="text, or json: one JSON object per line (default text; also log_format / CAMPWATCH_LOG_FORMAT).")
@_exits
def run(config: str | None, db: str | None, engine_urls: tuple[str, ...], metrics_host: str | None,
        metrics_port: int | None, gpu_interval: float | None, engine_interval: float | None,
        proxy_listen: str | None, proxy_upstream: str | None, host_name: str | None, no_gpu: bool,
        log_level: str | None, log_format: str | None) -> None:
    """Run the sidecar until SIGTERM or Ctrl-C."""
    from agent.wiring import build_runner

    overrides: dict[str, Any] = {}
    _put(overrides, "store.url", db)
    _put(overrides, "engine.urls", list(engine_urls) or None)
    _put(overrides, "metrics.host", metrics_host)
    _put(overrides, "metrics.port", metrics_port)
    _put(overrides, "gpu.interval_s", gpu_interval)
    _put(overrides, "engine.interval_s", engine_interval)
    _put(overrides, "proxy.listen", proxy_listen)
    _put(overrides, "proxy.upstream", proxy_upstream)
    _put(overrides, "host", host_name)
    if no_gpu:
        _put(overrides, "gpu.enabled", False)
    _put(overrides, "log_level", log_level.upper() if log_level else None)
    _put(overrides, "log_format", log_format)
    settings = _settings(config, overrides)
    _logging(settings.log_level, settings.log_format, settings)
    from agent.logs import log_startup

    log_startup(settings, config)

    async def go() -> None:
        parts = build_runner(settings)
        parts.runner.install_signal_handlers()
        await parts.runner.run()

    _run_bounded(go, settings.shutdown_grace_s)


@main.command("check-config")
@click.argument("file", type=click.Path(dir_okay=False))
@_exits
def check_config(file: str) -> None:
    """Validate FILE (with CAMPWATCH_* env applied) and print the resolved settings, secrets masked."""
    from agent.cost.baselines import resolve_baselines

    settings = load_settings(file)
    resolve_baselines(settings.cost)  # unknown API models or a bad price file fail here, not at run time
    _console().print_json(json.dumps(masked(settings)))


@main.group("config")
def config_group() -> None:
    """Configuration reference."""


@config_group.command("keys")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def config_keys(as_json: bool) -> None:
    """Every configuration key with its type, default, environment variable and meaning."""
    import dataclasses

    from rich.table import Table

    from agent.config_keys import setting_keys

    keys = setting_keys()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(k) for k in keys], indent=2))
        return
    table = Table("key", "type", "default", "environment variable", "meaning", show_lines=False)
    for k in keys:
        table.add_row(k.key, k.type, k.default, k.env, k.description)
    _console().print(table)
@main.command("hash-password")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from standard input (one line).")
def hash_password_command(from_stdin: bool) -> None:
    """Print a scrypt hash of a password for metrics.basic_auth_users (asks twice, hidden, unless --stdin)."""
    from agent.passwords import hash_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        _err_console().print("[bold red]error:[/] expected a non-empty password", highlight=False, soft_wrap=True)
        sys.exit(2)
    click.echo(hash_password(password))


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--config", "config", type=click.Path(dir_okay=False))
@click.option("--db", "db_url", help="SQLAlchemy URL (default: the configured store).")
@_exits
def db_upgrade(config: str | None, db_url: str | None) -> None:
    """Apply Alembic migrations up to the newest revision."""
    from agent.store.db import open_store
    from agent.store.migrate import current_revision

    overrides: dict[str, Any] = {}
    _put(overrides, "store.url", db_url)
    settings = _settings(config, overrides)
    engine = open_store(settings.store.url.get_secret_value(), upgrade=True)
    revision = current_revision(engine)
    click.echo(f"{engine.url.render_as_string(hide_password=True)} is at revision {revision}")


@main.command()
@click.option("--config", "config", type=click.Path(dir_okay=False))
@_exits
def gpus(config: str | None) -> None:
    """List the GPUs NVML finds and which fields each supports."""
    from agent.collectors.gpu.inventory import describe_gpus, render_gpus
    from agent.collectors.gpu.nvml import NvmlDriver

    _settings(config, {})
    render_gpus(_console(), describe_gpus(NvmlDriver()))


@main.command()
@click.option("--config", "config", type=click.Path(dir_okay=False))
@click.option("--db", "db_url", help="SQLAlchemy URL (default: the configured store); read-only access is enough.")
@click.option("--since", help="Window back from now: 90s, 15m, 12h, 30d, 2w (default 30d).")
@click.option("--from", "from_", help="Start: a date (2026-10-01) or a timestamp, UTC unless an offset is given.")
@click.option("--to", help="End (exclusive), as --from; default now.")
@click.option("--month", help="A calendar month, e.g. 2026-10.")
@click.option("--quarter", help="A calendar quarter, e.g. 2026Q3.")
@click.option("--host", "host_name", help="One host only (default: every host in the database).")
@click.option("--by", "by", type=click.Choice(["model", "team", "caller", "route"]),
              help="Also show the cost split by this (showback; teams from cost.teams).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--hybrid", "hybrid", is_flag=True,
              help="Also show the hybrid optimum: GPUs for the base load, the overflow on each API.")
@_exits
def cost(config: str | None, db_url: str | None, since: str | None, from_: str | None, to: str | None,
         month: str | None, quarter: str | None, host_name: str | None, by: str | None, as_json: bool,
         hybrid: bool) -> None:
    """Realized self-hosting cost per million tokens against API baselines, and the verdict.

    Reads only (never migrates or writes): prices are applied from the current settings to the
    measures the agent stored, so the report reflects the settings as they are now."""
    from datetime import UTC, datetime

    from agent.periods import resolve_period

    period = resolve_period(since=since, from_=from_, to=to, month=month, quarter=quarter, now=datetime.now(UTC))
    from agent.cost.render import render_report
    from agent.cost.report import build_report, report_to_json
    from agent.store.db import open_store

    overrides: dict[str, Any] = {}
    _put(overrides, "store.url", db_url)
    settings = _settings(config, overrides)
    engine = open_store(settings.store.url.get_secret_value())
    report = build_report(engine, settings.cost, host=host_name, start=period.start, end=period.end,
                          period_label=period.label)
    if as_json:
        click.echo(json.dumps(report_to_json(report), indent=2, default=str))
    else:
        render_report(_console(), report, by=by, hybrid=hybrid)


@main.command()
@click.option("--quarter", help="The calendar quarter to review, e.g. 2026Q3 (default: the current one).")
@click.option("--host", "host_name", help="One host only (default: every host in the database).")
@click.option("--db", "db_url", help="SQLAlchemy URL (default: the configured store); read-only access is enough.")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML settings file (prices, baselines).")
@click.option("--plan", "plan", type=click.Path(dir_okay=False), help="TOML plan file ([[plan]] entries).")
@click.option("--out", "out", type=click.Path(), required=True,
              help="HTML file to write (with --all: a folder, holding index.html and one page per notebook).")
@click.option("--all", "render_every", is_flag=True, help="Render the three review notebooks, with an index page.")
@click.option("--now", "now_text", help="Treat this timestamp as now (reports on a quarter in progress).")
@click.option("--figures-json", "figures_json", type=click.Path(dir_okay=False),
              help="Also write the quarterly figures shown in the report to this JSON file.")
@_exits
def review(quarter: str | None, host_name: str | None, db_url: str | None, config: str | None, plan: str | None,
           out: str, render_every: bool, now_text: str | None, figures_json: str | None) -> None:
    """The quarterly review as HTML: executes the review notebooks (papermill, a real kernel) and
    exports them self-contained (nbconvert). Reads only: never migrates or writes the store."""
    from datetime import UTC, datetime
    from pathlib import Path

    from agent.extras import require_extra

    require_extra("review", "campwatch review")

    from agent.periods import parse_instant, quarter_of, quarter_period
    from agent.review.render import (
        NOTEBOOKS_DIR,
        QUARTERLY,
        ReviewParameters,
        describe,
        plan_overrides,
        render_all,
        render_notebook,
    )

    now = parse_instant(now_text, "--now") if now_text else None
    moment = now or datetime.now(UTC)
    period = quarter_period(quarter) if quarter else quarter_of(moment)
    overrides: dict[str, Any] = plan_overrides(plan)
    _put(overrides, "store.url", db_url)
    # every bad setting is reported here, before a kernel starts; plan entries name the plan file
    settings = load_settings(config, overrides=overrides, flags={**FLAGS, "cost.plan": f"--plan {plan}"})
    params = ReviewParameters(db_url=settings.store.url.get_secret_value(), quarter=period.label, host=host_name,
                              config=str(Path(config).resolve()) if config else None,
                              plan=str(Path(plan).resolve()) if plan else None, now=now,
                              figures_json=str(Path(figures_json).resolve()) if figures_json else None)
    _err_console().print(f"[dim]review {scrub_text(describe(params))}[/dim]", highlight=False)
    if render_every:
        written = render_all(Path(out), params)
    else:
        written = render_notebook(NOTEBOOKS_DIR / QUARTERLY, Path(out), params)
    click.echo(str(written))


@main.command()
@click.option("--config", "config", type=click.Path(dir_okay=False))
@click.option("--db", "db_url", help="SQLAlchemy URL (default: the configured store).")
@click.option("--model", help="One model only (default: every model with request records).")
@click.option("--host", "host_name", help="One host only (default: every host in the database, as for cost).")
@click.option("--last", is_flag=True, help="Show the latest stored results instead of running a check.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_exits
def drift(config: str | None, db_url: str | None, model: str | None, host_name: str | None, last: bool,
          as_json: bool) -> None:
    """Test recent outputs (proxy records, captured texts) for drift against the reference window."""
    from agent.extras import require_extra

    require_extra("drift", "campwatch drift")
    from agent.drift.render import render_drift
    from agent.drift.results import drift_to_json, latest_results
    from agent.review.frames import stored_hosts
    from agent.store.db import open_store

    overrides: dict[str, Any] = {}
    _put(overrides, "store.url", db_url)
    settings = _settings(config, overrides)
    # --last is a report: reads only, never migrates; a check writes its results
    engine = open_store(settings.store.url.get_secret_value(), upgrade=not last)
    found = stored_hosts(engine)
    source = "drift_results" if last else "request_records"
    hosts = [host_name] if host_name else found[source]
    results = []
    for host in hosts:
        if last:
            results += latest_results(engine, host, model=model)
        else:
            from agent.drift.check import run_drift_check

            results += run_drift_check(engine, settings.drift, host, model,
                                       refusal_phrases=settings.capture.refusal_phrases)
    database = engine.url.render_as_string(hide_password=True)
    _err_console().print(f"[dim]read {database}, {host_name or 'all hosts'} "
                         f"(found: {', '.join(hosts) or 'none'})[/dim]", highlight=False)
    if not results:
        elsewhere = "; ".join(f"{t}: {', '.join(h) or 'empty'}" for t, h in found.items())
        _err_console().print(f"[dim]nothing for {host_name or 'any host'} in {source}; the database holds {elsewhere}"
                             "[/dim]", highlight=False)
    if as_json:
        click.echo(drift_to_json(results))
    else:
        render_drift(_console(), results)


def history_days(text: str) -> int:
    """'90d' (or '90') -> 90: the days of a --history, 1 to 400; ConfigError naming the input otherwise."""
    value = text.strip().lower().removesuffix("d")
    if not value.isdigit() or not 1 <= int(value) <= 400:
        raise ConfigError("command line", [Problem("--history", f"expected a number of days like 90d (1 to 400), "
                                                                f"got {text!r}")])
    return int(value)


@main.command("seed-history")
@click.option("--db", "db_url", default="sqlite:///var/demo/history.db", show_default=True, help="SQLAlchemy URL.")
@click.option("--days", type=click.IntRange(1, 400), default=90, show_default=True, help="Days of history.")
@click.option("--gpus", type=click.IntRange(1, 64), default=8, show_default=True, help="Simulated GPUs.")
@click.option("--end", "end_text", help="End of the history (a date or timestamp, UTC; default: today 00:00 UTC).")
@click.option("--host", "host_name", default="simulated-history", show_default=True, help="Host label of the rows.")
@click.option("--no-drift", is_flag=True, help="Plant no drift event in the outputs.")
@click.option("--settings-out", "settings_out", type=click.Path(dir_okay=False),
              help="Where to write the settings that go with it (default: beside a SQLite database, else ./).")
@_exits
def seed_history_command(db_url: str, days: int, gpus: int, end_text: str | None, host_name: str, no_drift: bool,
                         settings_out: str | None) -> None:
    """Write a SIMULATED quarter the way the agent would (raw samples, rollups, cost measures, drift
    results), with a GPU price change and a month over plan in the settings it writes beside it."""
    _seed_history(db_url, days, gpus, end_text, host_name, no_drift, settings_out)


def _seed_history(db_url: str, days: int, gpus: int, end_text: str | None, host_name: str, no_drift: bool,
                  settings_out: str | None) -> None:
    from datetime import UTC, datetime
    from pathlib import Path

    from agent.extras import require_extra

    if not no_drift:
        require_extra("drift", "campwatch seed-history's drift checks (--no-drift skips them)")

    from rich.progress import Progress

    from agent.periods import parse_instant, quarter_of
    from agent.sim.history import HistoryPlan, history_settings_toml, seed_history
    from agent.store.db import open_store
    from agent.store.schema import gpu_samples

    if end_text:
        end = parse_instant(end_text, "--end")
    else:
        today = datetime.now(UTC)
        end = datetime(today.year, today.month, today.day, tzinfo=UTC)
    engine = open_store(db_url, upgrade=True)  # creates a SQLite file's folder
    from sqlalchemy import select

    with engine.connect() as conn:
        if conn.execute(select(gpu_samples.c.id).where(gpu_samples.c.host == host_name).limit(1)).first():
            raise ConfigError("command line", [Problem("--db/--host", f"the database already holds samples of host "
                                                       f"{host_name!r}; expected an empty one (or another --host)")])
    plan = HistoryPlan(host=host_name, days=days, end=end, gpus=gpus, drift_last_days=0.0 if no_drift else 2.0)
    with Progress(console=_err_console(), transient=False) as bar:
        task = bar.add_task(f"seeding {days} days x {gpus} GPUs (simulated)", total=days)
        written = seed_history(engine, plan, progress=lambda done, _total: bar.update(task, completed=done))
    if settings_out:
        target = Path(settings_out)
    elif db_url.startswith("sqlite:///"):
        target = Path(db_url.removeprefix("sqlite:///")).with_suffix(".toml")
    else:
        target = Path("campwatch-history.toml")
    target.write_text(history_settings_toml(plan, written["tokens"]), encoding="utf-8")
    safe_url = engine.url.render_as_string(hide_password=True)
    _console().print(", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in written.items()), highlight=False)
    last = end - timedelta(seconds=1)
    _console().print(f"settings (prices, plan): {target}\nnext: campwatch review --db '{safe_url}' --config {target} "
                     f"--quarter {quarter_of(last).label} --out report.html", highlight=False)


@main.command()
@click.option("--duration", type=float, default=60.0, show_default=True, help="Seconds of simulated traffic.")
@click.option("--speed", type=float, default=1.0, show_default=True,
              help="Replay the trace's arrivals this many times faster.")
@click.option("--db", "db_url", help="SQLAlchemy URL (default: sqlite under ./var/demo/).")
@click.option("--metrics-port", type=int, default=18400, show_default=True,
              help="Port for campwatch's /metrics (0 picks a free one).")
@click.option("--gpu-hourly-usd", type=float, default=2.50, show_default=True,
              help="Price of one simulated GPU-hour for the verdict.")
@click.option("--quiet", is_flag=True, help="No live view; print the summary only.")
@click.option("--history", "history", help="First seed this much SIMULATED history (e.g. 90d), as `campwatch "
              "seed-history` does, into --db (default: a fresh var/demo/history.db), then run the demo.")
@_exits
def demo(duration: float, speed: float, db_url: str | None, metrics_port: int, gpu_hourly_usd: float,
         quiet: bool, history: str | None) -> None:
    """Run the real sidecar against a simulated GPU and a simulated vLLM server replaying a real trace."""
    from agent.demo import DemoOptions, run_demo

    if duration <= 0 or speed <= 0:
        from agent.errors import Problem

        raise ConfigError("command line", [Problem("--duration/--speed", "expected positive numbers")])
    if history is not None:
        days = history_days(history)
        target = db_url or "sqlite:///var/demo/history.db"
        if db_url is None:
            from pathlib import Path

            for suffix in ("", "-wal", "-shm"):  # the default history is the demo's own: replaced each run
                Path(f"var/demo/history.db{suffix}").unlink(missing_ok=True)
        _seed_history(target, days, 8, None, "simulated-history", False, None)
    run_demo(DemoOptions(duration_s=duration, speed=speed, db_url=db_url, metrics_port=metrics_port,
                         gpu_hourly_usd=gpu_hourly_usd, live=not quiet), _console())


if __name__ == "__main__":
    main()
