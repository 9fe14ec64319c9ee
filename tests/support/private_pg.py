"""A private PostgreSQL instance for tests and soaks that stop, freeze or kill the server: initdb
into a temporary folder as the `postgres` OS user, pg_ctl on a free port. Never the shared one."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _bin(name: str) -> str | None:
    for folder in PG_BIN_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    return shutil.which(name)


class PrivatePostgres:
    """One initdb'ed cluster: start(), stop(), freeze()/thaw() (SIGSTOP/SIGCONT every server
    process), url(database). Runs the server as `postgres` when we are root."""

    def __init__(self, root: Path | None = None) -> None:
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError("initdb/pg_ctl not found (PostgreSQL server binaries)")
        self._initdb, self._pg_ctl = initdb, pg_ctl
        self.root = root or Path(tempfile.mkdtemp(prefix="campwatch-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
        self._run([self._initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                   "-E", "UTF8"])
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 50\n")

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=60)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self._run([self._pg_ctl, "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "30", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._run([self._pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop"], check=False)

    def running(self) -> bool:
        return self._run([self._pg_ctl, "-D", str(self.data), "status"], check=False).returncode == 0

    def _pids(self) -> list[int]:
        pidfile = self.data / "postmaster.pid"
        try:
            postmaster = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(postmaster)], capture_output=True, text=True)
        return [postmaster, *(int(p) for p in out.stdout.split())]

    def freeze(self) -> None:
        """SIGSTOP the postmaster and its backends: connections hang, nothing answers."""
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        self.thaw()
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    """One private PostgreSQL per test module (a start takes a few seconds); skipped when the
    server binaries are missing, except in CI."""
    try:
        pg = PrivatePostgres()
        pg.start()
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            pytest.fail(f"cannot start a private PostgreSQL: {exc}")
        pytest.skip(f"cannot start a private PostgreSQL: {exc}")
    try:
        yield pg
    finally:
        pg.destroy()
