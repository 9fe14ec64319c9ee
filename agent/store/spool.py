"""The local spool: where queued rows go while the store cannot take them, and at shutdown.

Append-only segment files (`<created ns>-<random>.jsonl`, one JSON object a line:
`{"table": name, "row": {column: value}}`, timestamps as ISO 8601) under one folder, replayed
oldest first. Total size is capped: past the cap the oldest segments are deleted and their rows
counted in campwatch_dropped_total{reason="spool_full"}. Which lines of a segment are already in the
database is recorded in the same transaction as the rows (table spool_replays), so a crash between
commit and deleting the file never stores a row twice (see agent.store.writer)."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.errors import StoreError
from agent.store.rows import CODECS, TableCodec
from agent.telemetry import Telemetry

log = logging.getLogger(__name__)

Encoded = tuple[TableCodec, tuple[Any, ...]]
SUFFIX = ".jsonl"


def new_segment_id() -> str:
    """Sortable by creation time; fits spool_replays.segment (64)."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def dump_line(codec: TableCodec, values: tuple[Any, ...]) -> str:
    row = {name: _json_value(value) for name, value in zip(codec.columns, values, strict=True)}
    return json.dumps({"table": codec.table.name, "row": row}, separators=(",", ":")) + "\n"


def load_line(line: str) -> Encoded | None:
    """The row of one spool line, or None if the line is torn (a crash mid-write) or unknown."""
    try:
        obj = json.loads(line)
        codec = CODECS[obj["table"]]
        row = obj["row"]
        values = tuple(
            datetime.fromisoformat(row[name]) if name in codec.datetimes and row.get(name) is not None
            else row.get(name)
            for name in codec.columns)
    except (ValueError, KeyError, TypeError):
        return None
    return codec, values


class Spool:
    """Segment files under `directory`; used from the writer's thread (and its stop) only."""

    def __init__(self, directory: Path, telemetry: Telemetry, *, max_bytes: int = 1 << 30,
                 segment_max_bytes: int = 8 << 20) -> None:
        self.directory = directory.expanduser()
        self._telemetry = telemetry
        self._max = max_bytes
        self._segment_max = segment_max_bytes
        self._current: str | None = None
        self._oldest_ts: dict[str, float | None] = {}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"store.spool_dir: cannot create {self.directory} ({exc.strerror}); "
                             "expected a writable folder") from None

    def _path(self, segment: str) -> Path:
        return self.directory / f"{segment}{SUFFIX}"

    def segments(self) -> list[str]:
        """Segment ids, oldest first."""
        try:
            return sorted(p.name[: -len(SUFFIX)] for p in self.directory.iterdir() if p.name.endswith(SUFFIX))
        except OSError:
            return []

    def bytes(self) -> int:
        total = 0
        for segment in self.segments():
            try:
                total += self._path(segment).stat().st_size
            except OSError:
                continue
        return total

    def append(self, rows: Sequence[Encoded | None], segment: str | None = None) -> str:
        """Write rows durably (fsync) to `segment`, or to the open segment (a new one when none or
        full); None writes an empty line (keeps line numbers). Returns the segment id. Raises
        OSError when the disk refuses."""
        if segment is None:
            if self._current is None or not self._path(self._current).exists() or \
                    self._path(self._current).stat().st_size >= self._segment_max:
                self._current = new_segment_id()
            segment = self._current
        data = "".join("\n" if row is None else dump_line(*row) for row in rows).encode()
        with open(self._path(segment), "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self._enforce_cap()
        return segment

    def seal(self) -> None:
        """Later appends go to a new segment (the open one is about to be replayed)."""
        self._current = None

    def read(self, segment: str) -> tuple[list[Encoded | None], int]:
        """The segment's rows by line (None for empty or torn lines) and how many lines were torn."""
        items: list[Encoded | None] = []
        torn = 0
        try:
            with open(self._path(segment), encoding="utf-8", errors="replace") as f:
                for line in f:
                    item = load_line(line) if line.strip() else None
                    torn += item is None and bool(line.strip())
                    items.append(item)
        except FileNotFoundError:
            pass
        return items, torn

    def remove(self, segment: str) -> None:
        self._oldest_ts.pop(segment, None)
        if self._current == segment:
            self._current = None
        self._path(segment).unlink(missing_ok=True)

    def oldest_ts(self) -> float | None:
        """Epoch seconds of the first row of the oldest segment (None when empty)."""
        for segment in self.segments():
            if segment not in self._oldest_ts:
                self._oldest_ts[segment] = self._first_ts(segment)
            ts = self._oldest_ts[segment]
            if ts is not None:
                return ts
        return None

    def _first_ts(self, segment: str) -> float | None:
        try:
            with open(self._path(segment), encoding="utf-8", errors="replace") as f:
                first = load_line(f.readline())
        except OSError:
            return None
        if first is None:
            return None
        codec, values = first
        if "ts" in codec.columns:
            ts = values[codec.columns.index("ts")]
            if isinstance(ts, datetime):
                return ts.timestamp()
        return None

    def _enforce_cap(self) -> None:
        segments = self.segments()
        sizes = {}
        for segment in segments:
            try:
                sizes[segment] = self._path(segment).stat().st_size
            except OSError:
                sizes[segment] = 0
        total = sum(sizes.values())
        for segment in segments:
            if total <= self._max:
                break
            lines = sum(1 for item in self.read(segment)[0] if item is not None)
            self.remove(segment)
            total -= sizes[segment]
            self._telemetry.dropped("spool_full", lines)
            log.warning("spool over store.spool_max_bytes (%d): dropped its oldest segment, %d rows",
                        self._max, lines)


def spool_dir_for(setting: str, engine_url: Any) -> Path:
    """store.spool_dir, or when empty: `spool` beside the SQLite database, else
    ~/.local/share/campwatch/spool (PostgreSQL, in-memory SQLite)."""
    if setting:
        return Path(setting).expanduser()
    if engine_url.get_backend_name() == "sqlite" and engine_url.database not in (None, "", ":memory:"):
        return Path(engine_url.database).expanduser().parent / "spool"
    return Path.home() / ".local" / "share" / "campwatch" / "spool"
