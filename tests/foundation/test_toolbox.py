"""The one toolbox: UTC normalisation, the counter-reset rule, durations and quarters, and opening
the store, each written once and used everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect

from agent.collectors.engine.windows import parse_window
from agent.collectors.gpu.energy import EnergyCounter
from agent.config import PlanQuarter
from agent.counters import adjusted_buckets, adjusted_total, histogram_was_reset, increase, rate, total_increase
from agent.errors import ConfigError, StoreError
from agent.periods import duration_seconds, parse_duration, parse_quarter, quarter_of, quarter_period
from agent.store.db import open_engine, open_store
from agent.utc import as_utc
from tests.support.db import sqlite_url_in


def test_a_naive_datetime_is_taken_as_utc_and_an_aware_one_is_converted() -> None:
    assert as_utc(datetime(2026, 3, 2, 12, 0)) == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert as_utc(datetime(2026, 3, 2, 12, 0)).tzinfo is UTC
    paris = timezone(timedelta(hours=2))
    converted = as_utc(datetime(2026, 3, 2, 14, 30, tzinfo=paris))
    assert (converted, converted.tzinfo) == (datetime(2026, 3, 2, 12, 30, tzinfo=UTC), UTC)
    assert as_utc(datetime(2026, 3, 2, 12, 0, tzinfo=UTC)) == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_a_counter_reset_to_a_lower_value_counts_the_new_value_as_the_increase() -> None:
    assert increase(100.0, 130.0) == 30.0
    assert increase(100.0, 40.0) == 40.0  # restarted: 40 counted since the restart
    assert increase(100.0, 0.0) == 0.0
    assert increase(None, 5.0) == 0.0 and increase(5.0, None) == 0.0
    assert total_increase([10.0, 15.0, None, 3.0, 8.0]) == 5.0 + 3.0 + 5.0


def test_the_adjusted_total_starts_at_the_first_reading_and_follows_the_same_reset_rule() -> None:
    assert adjusted_total(None, 0.0, 500.0) == 500.0
    assert adjusted_total(500.0, 500.0, 520.0) == 520.0
    assert adjusted_total(520.0, 520.0, 7.0) == 527.0
    assert rate([(0.0, 1000.0), (5.0, 1100.0), (10.0, 30.0), (15.0, 80.0)]) == pytest.approx(12.0)
    assert rate([(0.0, 1.0)]) is None


def test_a_histogram_with_one_bucket_gone_down_restarts_as_a_whole() -> None:
    assert histogram_was_reset((1.0, 4.0, 9.0), (1.0, 3.0, 12.0))
    assert not histogram_was_reset((1.0, 4.0, 9.0), (1.0, 4.0, 9.0))
    assert adjusted_buckets((1.0, 4.0, 9.0), (1.0, 4.0, 9.0), (0.0, 1.0, 2.0)) == (1.0, 5.0, 11.0)
    assert adjusted_buckets((1.0, 4.0, 9.0), (1.0, 4.0, 9.0), (2.0, 6.0, 10.0)) == (2.0, 6.0, 10.0)


def test_the_energy_counter_applies_the_shared_reset_rule_to_a_driver_reload() -> None:
    counter = EnergyCounter()
    counter.update(1000.0, 0.0)
    counter.update(1300.0, 1.0)
    assert counter.update(200.0, 2.0) == 300.0 + 200.0  # reloaded: 200 J since the reload


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90.0), ("15m", 900.0), ("12h", 43_200.0),
                                               ("90d", 90 * 86_400.0), ("2w", 1_209_600.0), ("1.5h", 5400.0)])
def test_durations_are_a_number_and_a_unit(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "90", "abc", "-5m", "0s", "nanm", "infs", "5 minutes", "5M"])
def test_a_bad_duration_is_one_value_error_naming_the_input(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration") as caught:
        duration_seconds(text)
    assert repr(text) in str(caught.value)


def test_a_whole_duration_refuses_fractions_leading_zeros_and_other_units() -> None:
    assert duration_seconds("5m", units="smh", whole=True) == 300.0
    for text in ("1.5m", "05m", "2d"):
        with pytest.raises(ValueError, match="a whole number and one of the units s, m, h"):
            duration_seconds(text, units="smh", whole=True)
    assert parse_window("5m").seconds == 300.0
    with pytest.raises(ValueError, match="expected a duration such as 30s"):
        parse_window(" 5m")  # the label is exported as written


def test_the_command_line_duration_names_its_option_and_caps_a_century() -> None:
    assert parse_duration("90d") == timedelta(days=90)
    with pytest.raises(ConfigError, match=r"--since: expected a duration like 90s") as caught:
        parse_duration("soon")
    assert "'soon'" in str(caught.value)
    with pytest.raises(ConfigError, match="at most 36,600 days"):
        parse_duration("40000d")


@pytest.mark.parametrize("text", ["2026Q3", "2026-Q3", "2026q3", " 2026Q3 "])
def test_a_quarter_is_read_in_each_spelling(text: str) -> None:
    assert parse_quarter(text) == (2026, 3)
    period = quarter_period(text)
    assert (period.start, period.end, period.label) == (datetime(2026, 7, 1, tzinfo=UTC),
                                                        datetime(2026, 10, 1, tzinfo=UTC), "2026-Q3")


@pytest.mark.parametrize("text", ["2026Q5", "Q3", "26Q3", "2026-3", ""])
def test_a_bad_quarter_is_one_error_naming_the_input(text: str) -> None:
    with pytest.raises(ValueError, match=f"expected a quarter like 2026Q3 or 2026-Q3, got {text!r}"):
        parse_quarter(text)
    with pytest.raises(ConfigError, match="--quarter: expected a quarter like 2026Q3"):
        quarter_period(text)


def test_the_quarter_of_a_moment_is_taken_in_utc_even_from_a_naive_one() -> None:
    late = quarter_of(datetime(2026, 12, 31, 23, 59))
    assert (late.label, late.start, late.end) == ("2026-Q4", datetime(2026, 10, 1, tzinfo=UTC),
                                                  datetime(2027, 1, 1, tzinfo=UTC))
    # 00:30 on 1 April in UTC+02:00 is still 31 March in UTC
    assert quarter_of(datetime(2026, 4, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))).label == "2026-Q1"


def test_a_plan_quarter_reads_either_spelling_and_stores_the_reports_one() -> None:
    plan = PlanQuarter(quarter="2026Q4", tokens_per_month=1, cost_per_month_usd=1)
    assert plan.quarter == "2026-Q4"
    with pytest.raises(ValueError, match="expected a quarter like 2026-Q4, got 'Q3'"):
        PlanQuarter(quarter="Q3", tokens_per_month=1, cost_per_month_usd=1)


def test_a_reader_never_migrates_and_is_told_to_run_db_upgrade(tmp_path: Path) -> None:
    url = sqlite_url_in(tmp_path / "new")
    with pytest.raises(StoreError, match="Run `campwatch db upgrade`"):
        open_store(url)
    bare = open_engine(url)
    assert inspect(bare).get_table_names() == []  # the refused reader created nothing
    bare.dispose()


def test_upgrade_brings_the_store_to_the_newest_schema_which_a_reader_then_opens(tmp_path: Path) -> None:
    url = sqlite_url_in(tmp_path / "folder" / "that" / "is" / "created")
    writer = open_store(url, upgrade=True)
    assert "gpu_samples" in inspect(writer).get_table_names()
    writer.dispose()
    reader = open_store(url)
    assert "alembic_version" in inspect(reader).get_table_names()
    reader.dispose()
