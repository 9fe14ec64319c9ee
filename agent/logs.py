"""Log output: plain text lines or one JSON object per line, and the startup summary of what the
sidecar reads and writes (secrets masked)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO

from agent.config import ENV_PREFIX, Settings
from agent.urls import display_url

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
log = logging.getLogger("agent.startup")


class JsonFormatter(logging.Formatter):
    """{"ts": ISO 8601 UTC, "level", "logger", "message"[, "exception"]}, one object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def log_handler(log_format: str, stream: IO[str]) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def startup_lines(settings: Settings, config_path: str | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """What this run reads and writes, one fact a line; no secret values (variable names only)."""
    env = os.environ if environ is None else environ
    variables = sorted(k for k in env if k.startswith(ENV_PREFIX))
    path = config_path or env.get(ENV_PREFIX + "CONFIG")
    lines = [f"campwatch starting on host {settings.host!r}; configuration: "
             f"{('file ' + path) if path else 'no file'}, environment: {', '.join(variables) or 'none'}",
             f"store: {display_url(settings.store.url.get_secret_value())}"]
    metrics = settings.metrics
    lines.append(f"/metrics: {metrics.host}:{metrics.port}" if metrics.enabled else "/metrics: off")
    engine = settings.engine
    lines.append(f"engines: {', '.join(display_url(u) for u in engine.urls)} every {engine.interval_s:g} s"
                 if engine.urls else "engines: none")
    proxy = settings.proxy
    lines.append(f"proxy: {proxy.listen} -> {display_url(proxy.upstream)}" if proxy.listen else "proxy: off")
    gpu = settings.gpu
    if gpu.enabled:
        scope = ", ".join(gpu.devices) if gpu.devices else "NVIDIA_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES or all"
        lines.append(f"GPUs: every {gpu.interval_s:g} s, devices: {scope}")
    else:
        lines.append("GPUs: off")
    otlp = settings.otlp
    lines.append(f"OTLP: {display_url(otlp.endpoint)} every {otlp.interval_s:g} s"
                 + (f" (headers {', '.join(sorted(otlp.headers))})" if otlp.headers else "")
                 if otlp.endpoint else "OTLP: off")
    return lines


def log_startup(settings: Settings, config_path: str | None) -> None:
    for line in startup_lines(settings, config_path):
        log.info("%s", line)
