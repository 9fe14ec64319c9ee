"""Drift fixtures: request_records and captured_outputs tables on SQLite, filled from the seeded
generators of tests/support/traffic.py, and a guard that fails any non-loopback network use."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from agent.store.rows import insert_rows
from tests.support.traffic import MODEL, NOW, SETTINGS, Traffic, make_records


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
