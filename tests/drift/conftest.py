"""Drift fixtures: request_records and captured_outputs tables on SQLite, filled from seeded
generators, and a guard that fails any non-loopback network use.

The generated traffic is synthetic on purpose: drift tests need two windows whose distributions are
known to be equal or known to differ in named features, which a real capture cannot promise."""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from agent.config import DriftSettings
from agent.samples import CapturedOutput, RequestRecord
from agent.store.rows import insert_rows

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOST = "gpu-node-1"
MODEL = "llama-3.1-8b"

SETTINGS = DriftSettings(reference_days=1, current_hours=2, min_rows=100, max_rows=2000)
"""Current window: the 2 hours up to NOW; reference: the day before it."""

REFUSAL = "I'm sorry, but I can't help with that request."

TOPIC_A = ("recipe oven flour butter sugar bake minutes dough knead yeast bread crust slice garden tomato "
           "basil garlic onion simmer sauce pasta boil salt pepper olive roast chicken lemon herbs salad "
           "fresh kitchen bowl whisk eggs milk cream cheese vanilla chocolate cake frosting cookie tray "
           "grill skillet stir chop carrot potato soup broth spice cinnamon honey berries").split()
TOPIC_B = ("invoice payment account balance transfer ledger quarterly revenue expense audit compliance tax "
           "deduction portfolio dividend equity bond yield interest mortgage loan credit debit statement "
           "budget forecast margin profit asset liability capital shareholder filing regulator fiscal "
           "depreciation amortization accrual payroll vendor receivable payable treasury hedge").split()


@dataclass(frozen=True, slots=True)
class Traffic:
    """How one window's requests are drawn. `shifted()` is the drift scenario of the tests."""

    tokens_mean: float = 220.0
    refusal_rate: float = 0.02
    json_share: float = 0.5
    json_valid_rate: float = 0.97
    stream_share: float = 0.7

    def shifted(self) -> Traffic:
        return replace(self, tokens_mean=self.tokens_mean * 2.0, refusal_rate=self.refusal_rate * 10,
                       json_valid_rate=0.6)


def make_records(n: int, start: datetime, end: datetime, traffic: Traffic, seed: int, *,
                 model: str = MODEL, host: str = HOST) -> list[RequestRecord]:
    """`n` successful requests spread evenly over [start, end)."""
    rng = random.Random(seed)
    step = (end - start) / n
    out = []
    for i in range(n):
        refusal = rng.random() < traffic.refusal_rate
        json_requested = rng.random() < traffic.json_share
        tokens = 12 if refusal else max(1, int(rng.lognormvariate(0, 0.35) * traffic.tokens_mean))
        stream = rng.random() < traffic.stream_share
        out.append(RequestRecord(
            ts=start + step * i, host=host, request_id=f"{seed}-{i}", upstream="http://127.0.0.1:8000",
            route="/v1/chat/completions", method="POST", model=model, status=200, stream=stream,
            caller="c0", prompt_tokens=rng.randint(50, 400), completion_tokens=tokens, cached_tokens=0,
            ttft_seconds=rng.gammavariate(4, 0.03) if stream else None,
            latency_seconds=rng.gammavariate(6, 0.5), chunks=tokens if stream else 0,
            finish_reason="stop" if refusal or rng.random() < 0.85 else "length",
            output_chars=int(tokens * rng.uniform(3.6, 4.4)), refusal=refusal, json_requested=json_requested,
            json_valid=(rng.random() < traffic.json_valid_rate) if json_requested else None,
            non_ascii_ratio=rng.betavariate(1, 200), language=None,
        ))
    return out


def make_texts(n: int, start: datetime, end: datetime, vocabulary: tuple[str, ...] | list[str], seed: int, *,
               model: str = MODEL, host: str = HOST, retention: timedelta = timedelta(days=3)) -> list[CapturedOutput]:
    rng = random.Random(seed)
    step = (end - start) / n
    out = []
    for i in range(n):
        sentences = []
        for _ in range(rng.randint(1, 4)):
            words = [rng.choice(vocabulary) for _ in range(rng.randint(5, 14))]
            sentences.append(" ".join(words).capitalize() + ".")
        text = REFUSAL if rng.random() < 0.02 else " ".join(sentences)
        ts = start + step * i
        out.append(CapturedOutput(ts=ts, host=host, request_id=f"t{seed}-{i}", model=model, text=text,
                                  expires_at=ts + retention))
    return out


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    """The SQLite store the drift tests fill (tests/support/db.py)."""
    return sqlite_engine


@pytest.fixture
def any_engine(store: Engine) -> Engine:
    """SQLite and the machine's PostgreSQL (skipped when unreachable): sampling and latest-run
    queries are SQL that both must run the same way."""
    return store


@pytest.fixture
def fill(engine: Engine) -> Callable[..., None]:
    """fill(reference=Traffic(), current=Traffic().shifted(), n_ref=300, n_cur=300)"""

    def _fill(*, reference: Traffic | None = Traffic(), current: Traffic | None = Traffic(), n_ref: int = 300,
              n_cur: int = 300, seed: int = 1, model: str = MODEL) -> None:
        cur_start = NOW - timedelta(hours=SETTINGS.current_hours)
        ref_start = cur_start - timedelta(days=SETTINGS.reference_days)
        rows: list[Any] = []
        if reference is not None:
            rows += make_records(n_ref, ref_start, cur_start, reference, seed, model=model)
        if current is not None:
            rows += make_records(n_cur, cur_start, NOW, current, seed + 1000, model=model)
        insert_rows(engine, rows)

    return _fill


def _loopback(host: Any) -> bool:
    if not isinstance(host, str):
        return False
    return host in {"localhost", "::1", ""} or host.startswith("127.")


class NetworkAttempt(ConnectionRefusedError):
    """An OSError, as an offline host gives; tests assert on the recorded attempts, which a library
    that quietly falls back on OSError cannot hide."""


@contextmanager
def network_guard() -> Iterator[list[str]]:
    """Fails any connect or name lookup that is not loopback (or a Unix socket); the attempts are
    also collected, in case a library swallows the error and falls back quietly."""
    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family == socket.AF_UNIX:
            return
        host = address[0] if isinstance(address, tuple) else address
        if not _loopback(host):
            attempts.append(f"connect {address!r}")
            raise NetworkAttempt(f"network use outside loopback: connect {address!r}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _loopback(host if isinstance(host, str) else str(host)):
            attempts.append(f"getaddrinfo {host!r}")
            raise NetworkAttempt(f"network use outside loopback: name lookup {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield attempts


SITECUSTOMIZE = '''
"""Installed by tests/drift through PYTHONPATH into the drift worker's spawned child: records and
fails any non-loopback connect or name lookup."""
import os, socket
_log = os.environ["CAMPWATCH_TEST_NETLOG"]
_connect, _connect_ex, _gai = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
def _local(host):
    return isinstance(host, str) and (host in ("localhost", "::1", "") or host.startswith("127."))
def _deny(what):
    with open(_log, "a") as fh:
        fh.write(what + "\\n")
    raise OSError("network use outside loopback: " + what)
def connect(self, address):
    if self.family != socket.AF_UNIX and not _local(address[0] if isinstance(address, tuple) else address):
        _deny("connect %r" % (address,))
    return _connect(self, address)
def connect_ex(self, address):
    if self.family != socket.AF_UNIX and not _local(address[0] if isinstance(address, tuple) else address):
        _deny("connect %r" % (address,))
    return _connect_ex(self, address)
def getaddrinfo(host, *a, **k):
    if host is not None and not _local(host if isinstance(host, str) else str(host)):
        _deny("getaddrinfo %r" % (host,))
    return _gai(host, *a, **k)
socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
'''


@pytest.fixture
def guarded_children(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every Python process started from here on (the spawned drift worker) runs a sitecustomize
    that fails non-loopback network use and logs it to the returned file (created empty)."""
    site = tmp_path / "netguard"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "netlog.txt"
    log.write_text("")
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("CAMPWATCH_TEST_NETLOG", str(log))
    return log


def details(result: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(result.details)
    return parsed
