"""Finding 4, the spool's own guarantees: capped (oldest segment dropped first and counted), a line
torn by a crash mid-write is skipped and counted while the rest is replayed, order kept, and a
queue spilled while the store is down reaches the database in the order it was offered."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from agent.store.db import open_store
from agent.store.rows import encode
from agent.store.schema import gpu_samples
from agent.store.spool import Encoded, Spool, load_line
from agent.store.writer import StoreWriter
from agent.telemetry import Telemetry
from tests.support.rows import T0, count, gpu_rows


def _encoded(n: int, start: int = 0) -> list[Encoded]:
    out: list[Encoded] = []
    for row in gpu_rows(n, start=start):
        codec, values, _reasons = encode(row)
        out.append((codec, values))
    return out


def test_a_spool_line_round_trips_to_the_same_values() -> None:
    from agent.store.spool import dump_line

    codec, values = _encoded(1)[0]
    assert load_line(dump_line(codec, values)) == (codec, values)
    assert values[0] == T0


def test_past_its_cap_the_spool_drops_its_oldest_segments_first_and_counts_their_rows(tmp_path: Path) -> None:
    telemetry = Telemetry("h1")
    spool = Spool(tmp_path, telemetry, max_bytes=60_000, segment_max_bytes=10_000)
    for i in range(20):
        spool.append(_encoded(50, start=i * 50))
    assert spool.bytes() <= 60_000
    dropped = telemetry.dropped_count("spool_full")
    assert dropped > 0 and dropped % 50 == 0
    kept = [item for seg in spool.segments() for item in spool.read(seg)[0] if item is not None]
    # what is left is the newest rows, in order
    firsts = [values[0] for _codec, values in kept]
    assert firsts == sorted(firsts) and len(kept) + dropped == 1000
    assert firsts[-1] == gpu_rows(1, start=999)[0].ts


def test_a_torn_last_line_is_counted_and_the_rest_of_the_segment_is_replayed_in_order(
        db_url: str, tmp_path: Path) -> None:
    engine = open_store(db_url, upgrade=True)
    telemetry = Telemetry("h1")
    spool = Spool(tmp_path / "spool", telemetry)
    segment = spool.append(_encoded(30))
    with open(tmp_path / "spool" / f"{segment}.jsonl", "a") as f:
        f.write('{"table": "gpu_samples", "row": {"ts": "2026-')  # the crash came mid-write
    writer = StoreWriter(engine, telemetry, spool=spool)
    writer.offer(gpu_rows(5, start=30))
    assert writer.flush() == 35
    assert telemetry.dropped_count("spool_corrupt") == 1
    with engine.connect() as conn:
        powers = list(conn.execute(select(gpu_samples.c.power_watts).order_by(gpu_samples.c.id)).scalars())
    assert powers == [300.0 + i for i in range(30)] + [300.0 + i for i in range(5)]
    assert spool.segments() == [] and count(engine) == 35


def test_a_batch_whose_commit_outcome_was_lost_is_not_stored_twice(db_url: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    engine = open_store(db_url, upgrade=True)
    telemetry = Telemetry("h1")
    writer = StoreWriter(engine, telemetry)
    real_commit = StoreWriter._commit
    lost = {"once": True}

    def commit_then_lose_the_answer(self: StoreWriter, batch: object) -> int:
        written = real_commit(self, batch)  # type: ignore[arg-type]
        if lost.pop("once", False):  # committed, but the connection drops before we hear so
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
        return written

    monkeypatch.setattr(StoreWriter, "_commit", commit_then_lose_the_answer)
    writer.offer(gpu_rows(25))
    assert writer.flush() == 0 and writer.pending() == 25
    writer.offer(gpu_rows(5, start=25))
    writer.flush()
    assert count(engine) == 30 and writer.pending() == 0


def test_a_stuck_writer_committing_during_the_replay_of_its_spooled_batch_does_not_duplicate_it(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from agent.store.schema import spool_replays

    engine = open_store(db_url, upgrade=True)
    telemetry = Telemetry("h1")
    spool = Spool(tmp_path / "spool", telemetry)
    rows = _encoded(10)
    segment = spool.append(rows)
    replayer = StoreWriter(engine, telemetry, spool=spool)
    real_commit = StoreWriter._commit
    raced = {"once": True}

    def stuck_writer_commits_first(self: StoreWriter, batch: object) -> int:
        if raced.pop("once", False):  # the abandoned writer's transaction lands just now
            with engine.begin() as conn:
                conn.execute(gpu_samples.insert(), [dict(zip(c.columns, v, strict=True))
                                                    for c, v in rows])
                conn.execute(spool_replays.insert().values(segment=segment, first_line=0, rows=10,
                                                           committed_at=datetime.now(UTC)))
        return real_commit(self, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(StoreWriter, "_commit", stuck_writer_commits_first)
    replayer.flush()
    assert count(engine) == 10
    assert telemetry.dropped_count("rejected") == 0
    assert spool.segments() == []
