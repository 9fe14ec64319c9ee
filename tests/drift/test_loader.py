from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from agent.drift.loader import load_records, load_texts, models_in_window
from agent.store.rows import insert_rows
from tests.support.traffic import HOST, MODEL, NOW, TOPIC_A, Traffic, make_records, make_texts

START = NOW - timedelta(hours=10)


def test_sample_is_capped_deterministic_and_spread_over_the_window(any_engine: Engine) -> None:
    records = make_records(1000, START, NOW, Traffic(), seed=1)
    insert_rows(any_engine, records)
    first = load_records(any_engine, HOST, MODEL, START, NOW, ("ts", "request_id"), max_rows=200)
    again = load_records(any_engine, HOST, MODEL, START, NOW, ("ts", "request_id"), max_rows=200)
    assert (first.n, first.available) == (200, 1000)
    assert first.rows == again.rows
    # the sample covers the window evenly: each tenth of it holds about a tenth of the rows
    tenths = [0] * 10
    for ts, _ in first.rows:
        offset = ts.replace(tzinfo=None) - START.replace(tzinfo=None)
        tenths[min(int(offset / (NOW - START) * 10), 9)] += 1
    assert min(tenths) >= 10, tenths


def test_window_under_the_cap_is_read_whole(any_engine: Engine) -> None:
    insert_rows(any_engine, make_records(150, START, NOW, Traffic(), seed=2))
    sample = load_records(any_engine, HOST, MODEL, START, NOW, ("request_id",), max_rows=200)
    assert (sample.n, sample.available) == (150, 150)


def test_only_this_hosts_successful_outputs_of_the_model_in_the_window_are_read(any_engine: Engine) -> None:
    good = make_records(20, START, NOW, Traffic(), seed=3)
    noise = [
        replace(good[0], request_id="other-host", host="gpu-node-2"),
        replace(good[0], request_id="other-model", model="qwen"),
        replace(good[0], request_id="server-error", status=500),
        replace(good[0], request_id="client-gone", error="client_disconnected"),
        replace(good[0], request_id="no-output", output_chars=None),
        replace(good[0], request_id="too-early", ts=START - timedelta(seconds=1)),
        replace(good[0], request_id="at-the-end", ts=NOW),
    ]
    insert_rows(any_engine, good + noise)
    sample = load_records(any_engine, HOST, MODEL, START, NOW, ("request_id",), max_rows=1000)
    assert sorted(r[0] for r in sample.rows) == sorted(r.request_id for r in good)
    assert models_in_window(any_engine, HOST, START, NOW) == [MODEL, "qwen"]


def test_expired_captured_texts_are_not_read(any_engine: Engine) -> None:
    kept = make_texts(5, START, NOW, TOPIC_A, seed=4)
    expired = make_texts(5, START, NOW - timedelta(hours=2), TOPIC_A, seed=5, retention=timedelta(hours=1))
    insert_rows(any_engine, kept + expired)
    sample = load_texts(any_engine, HOST, MODEL, START, NOW, NOW, max_rows=100)
    assert sorted(r[0] for r in sample.rows) == sorted(t.text for t in kept)


def test_unknown_column_is_a_clear_error(any_engine: Engine) -> None:
    with pytest.raises(ValueError, match=r"unknown.*'tokens'"):
        load_records(any_engine, HOST, MODEL, START, NOW, ("tokens",), max_rows=100)
