"""Fixtures for every test: throwaway databases on SQLite and on the machine's real PostgreSQL
(defined in tests/support/db.py, shared with the benchmarks)."""

from __future__ import annotations

pytest_plugins = ["tests.support.db"]
