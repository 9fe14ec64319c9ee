"""`campwatch demo`: the real sidecar (runner, collectors, proxy, store, exposition, cost) against a
simulated GPU and a simulated vLLM server that replays a real production trace. Everything simulated
is labelled so: GPU and model names, the host label, and the `simulated` column of every row."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from sqlalchemy import func, select

from agent.config import Settings, load_settings
from agent.errors import CampwatchError
from agent.sim.model_server import SimServerConfig, SimulatedModelServer, start_server
from agent.sim.trace import ATTRIBUTION, load_trace
from agent.sim.traffic import TrafficPlan, TrafficStats, replay
from agent.store.maintenance import maintain
from agent.store.schema import metadata
from agent.wiring import Parts, build_runner

DEMO_HOST = "simulated-demo"
DEFAULT_DB = Path("var") / "demo" / "campwatch-demo.db"
SHIFT_AT = 0.6
"""Share of the run after which the simulated server's outputs change (for the drift check)."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    duration_s: float = 60.0
    speed: float = 1.0
    db_url: str | None = None
    metrics_port: int = 18400
    gpu_hourly_usd: float = 2.50
    live: bool = True
    engine_interval_s: float = 2.0


def _free_port(preferred: int) -> int:
    if preferred == 0:
        return 0
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return 0


def _settings(options: DemoOptions, db_url: str, server_port: int, proxy_port: int) -> Settings:
    return load_settings(None, environ={}, overrides={
        "host": DEMO_HOST,
        "store": {"url": db_url, "flush_interval_s": 1.0, "maintenance_interval_s": 30.0},
        "gpu": {"interval_s": 1.0},
        "engine": {"urls": [f"http://127.0.0.1:{server_port}/metrics"],
                   "interval_s": options.engine_interval_s, "windows": ["1m", "5m"],
                   "gpu_model": "Simulated H100 80GB HBM3"},
        "metrics": {"host": "127.0.0.1", "port": _free_port(options.metrics_port)},
        "proxy": {"listen": f"127.0.0.1:{proxy_port}", "upstream": f"http://127.0.0.1:{server_port}"},
        # Off by default; the demo keeps every (redacted) simulated output so text drift can be shown.
        "capture": {"store_text": True, "text_sample_ratio": 1.0, "text_retention_days": 1.0},
        "cost": {"pricing": {"kind": "hourly", "gpu_hourly_usd": str(options.gpu_hourly_usd)},
                 "interval_s": 15.0},
    })


def _value(parts: Parts, name: str) -> float | None:
    values = [p.value for p in parts.snapshot.points() if p.name == name]
    return sum(values) if values else None


def _fmt(value: float | None, spec: str = ",.0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _view(parts: Parts, stats: TrafficStats, elapsed: float, options: DemoOptions, proxy_url: str) -> Panel:
    table = Table.grid(padding=(0, 3))
    table.add_column(style="bold cyan")
    table.add_column()
    table.add_column(style="bold cyan")
    table.add_column()
    util = _value(parts, "campwatch_gpu_utilization_ratio")
    table.add_row("elapsed", f"{elapsed:5.0f} / {options.duration_s:.0f} s",
                  "requests sent / done", f"{stats.sent} / {stats.completed} ({stats.failed} failed)")
    table.add_row("GPU utilization", _fmt(None if util is None else util * 100, ".0f", " %"),
                  "in flight", str(stats.in_flight))
    table.add_row("GPU power", _fmt(_value(parts, "campwatch_gpu_power_watts"), ".0f", " W"),
                  "engine running / waiting",
                  f"{_fmt(_value(parts, 'campwatch_engine_requests_running'))} / "
                  f"{_fmt(_value(parts, 'campwatch_engine_requests_waiting'))}")
    table.add_row("GPU energy", _fmt(_value(parts, "campwatch_gpu_energy_joules_total"), ",.0f", " J"),
                  "KV cache", _fmt(None if (kv := _value(parts, "campwatch_engine_kv_cache_usage_ratio")) is None
                                   else kv * 100, ".1f", " %"))
    table.add_row("prompt tokens", _fmt(_value(parts, "campwatch_engine_prompt_tokens_total")),
                  "generated tokens", _fmt(_value(parts, "campwatch_engine_generation_tokens_total")))
    table.add_row("rows stored", f"{int(parts.telemetry.written_count()):,}",
                  "proxy", proxy_url)
    return Panel(table, title="campwatch demo [dim](simulated GPU + simulated vLLM, real sidecar)[/]")


@dataclass(frozen=True, slots=True)
class _DemoRun:
    """What the live part of the demo leaves for the summary."""

    parts: Parts
    settings: Settings
    stats: TrafficStats
    server: SimulatedModelServer
    db_path: Path | None
    """The demo's own SQLite file; None when --db named a database."""
    elapsed_s: float
    started_at: datetime


async def _run(options: DemoOptions, console: Console) -> _DemoRun:
    from agent.sim.gpu import SimulatedGpu

    db_url = options.db_url
    db_path: Path | None = None
    if db_url is None:
        db_path = DEFAULT_DB.resolve()
        db_path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        db_url = f"sqlite:///{db_path}"

    server = SimulatedModelServer(SimServerConfig(tokens_per_chunk=4, drift_after_s=options.duration_s * SHIFT_AT))
    server_runner, server_port = await start_server(server)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        proxy_port = probe.getsockname()[1]
    settings = _settings(options, db_url, server_port, proxy_port)
    gpu = SimulatedGpu(count=1, load=server.load)
    parts = build_runner(settings, gpu_driver=gpu, simulated=True)
    proxy_url = f"http://127.0.0.1:{proxy_port}"
    run_task = asyncio.create_task(parts.runner.run())
    await asyncio.sleep(0.5)

    stats = TrafficStats()
    plan = TrafficPlan(base_url=proxy_url, model=server.config.model, duration_s=options.duration_s,
                       speed=options.speed)
    started = time.monotonic()
    started_at = datetime.now(UTC)
    traffic = asyncio.create_task(replay(load_trace(), plan, stats))
    console.print(f"[dim]Replaying {ATTRIBUTION}[/]")
    console.print(f"[dim]campwatch /metrics: http://127.0.0.1:{parts.runner.metrics_bound_port}/metrics  "
                  f"proxy: {proxy_url}  simulated vLLM: http://127.0.0.1:{server_port}[/]")
    if options.live and console.is_terminal:
        with Live(console=console, refresh_per_second=2) as live:
            while not traffic.done():
                live.update(_view(parts, stats, time.monotonic() - started, options, proxy_url))
                await asyncio.sleep(0.5)
            live.update(_view(parts, stats, time.monotonic() - started, options, proxy_url))
    else:
        next_report = 0.0
        while not traffic.done():
            elapsed = time.monotonic() - started
            if elapsed >= next_report:
                console.print(f"  t={elapsed:4.0f}s sent={stats.sent} done={stats.completed} "
                              f"in_flight={stats.in_flight} rows={int(parts.telemetry.written_count())}")
                next_report += 10.0
            await asyncio.sleep(0.5)
    await traffic
    await asyncio.sleep(options.engine_interval_s + 0.5)  # one more scrape sees the final counters
    parts.runner.stop()
    await run_task
    await server_runner.cleanup()
    await asyncio.to_thread(maintain, parts.engine, settings.host,
                            raw_days=settings.store.raw_retention_days,
                            rollup_days=settings.store.rollup_retention_days)
    return _DemoRun(parts, settings, stats, server, db_path, time.monotonic() - started, started_at)


def _table_counts(parts: Parts) -> dict[str, int]:
    with parts.engine.connect() as conn:
        return {name: int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
                for name, table in metadata.tables.items() if name != "rollup_state"}


def _gpu_summary(parts: Parts) -> tuple[float | None, float | None]:
    from agent.counters import total_increase
    from agent.store.schema import gpu_samples

    with parts.engine.connect() as conn:
        util = conn.execute(select(func.avg(gpu_samples.c.utilization_ratio))
                            .where(gpu_samples.c.up.is_(True))).scalar()
        energy = conn.execute(select(gpu_samples.c.energy_joules_total)
                              .order_by(gpu_samples.c.uuid, gpu_samples.c.ts)).scalars().all()
    return (float(util) if util is not None else None), total_increase(energy)


def run_demo(options: DemoOptions, console: Console) -> None:
    result = asyncio.run(_run(options, console))
    parts, settings, stats, server = result.parts, result.settings, result.stats, result.server
    counts = _table_counts(parts)
    util, energy = _gpu_summary(parts)
    summary = Table(title="campwatch demo summary (simulated)", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("trace", ATTRIBUTION)
    summary.add_row("requests", f"{stats.sent} sent, {stats.completed} completed, {stats.failed} failed "
                                f"in {result.elapsed_s:.0f} s (speed x{options.speed:g})")
    summary.add_row("tokens served", f"{server.prompt_tokens:,} prompt + {server.generation_tokens:,} generated")
    summary.add_row("GPU utilization", "-" if util is None else f"{util * 100:.1f} % average (simulated H100)")
    summary.add_row("GPU energy", "-" if energy is None else f"{energy:,.0f} J ({energy / 3.6e6:.4f} kWh)")
    summary.add_row("rows stored", ", ".join(f"{name}={n:,}" for name, n in counts.items() if n))
    where = str(result.db_path) if result.db_path else parts.engine.url.render_as_string(hide_password=True)
    summary.add_row("database", where)
    console.print(summary)
    _drift(parts, settings, options, result.started_at, console)
    _verdict(parts, settings, options, console)


def _drift(parts: Parts, settings: Settings, options: DemoOptions, started_at: datetime, console: Console) -> None:
    """The simulated server shifts its outputs after 60 % of the run; test the last 40 % against the
    first 60 % with the real drift check (Evidently, offline)."""
    from agent.drift.check import run_drift_check
    from agent.drift.render import render_drift

    shift = started_at + timedelta(seconds=options.duration_s * SHIFT_AT)
    now = datetime.now(UTC)
    drift_settings = settings.drift.model_copy(update={
        "reference_start": started_at, "reference_end": shift,
        "current_hours": (now - shift).total_seconds() / 3600, "min_rows": 20})
    console.print(f"[bold]Output drift[/] (the simulated server changes its outputs "
                  f"{options.duration_s * SHIFT_AT:.0f} s in): requests after the change against those before it")
    try:
        results = run_drift_check(parts.engine, drift_settings, settings.host, now=now,
                                  refusal_phrases=settings.capture.refusal_phrases)
    except CampwatchError as exc:
        console.print(f"[yellow]drift check failed: {exc}[/]")
        return
    render_drift(console, results)


def _verdict(parts: Parts, settings: Settings, options: DemoOptions, console: Console) -> None:
    from agent.cost.render import render_report
    from agent.cost.report import build_report

    window = timedelta(seconds=options.duration_s + 600)
    report = build_report(parts.engine, settings.cost, window, settings.host)
    console.print(f"[bold]Verdict[/] for the simulated run, GPU priced at "
                  f"${Decimal(str(options.gpu_hourly_usd)):.2f}/GPU-hour:")
    render_report(console, report)
