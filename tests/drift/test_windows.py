from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.config import DriftSettings, load_settings
from agent.drift.windows import drift_windows
from agent.errors import ConfigError

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_rolling_reference_is_the_days_just_before_the_current_window() -> None:
    w = drift_windows(DriftSettings(reference_days=7, current_hours=24), NOW)
    assert (w.current_start, w.current_end) == (NOW - timedelta(hours=24), NOW)
    assert (w.reference_start, w.reference_end) == (NOW - timedelta(days=8), NOW - timedelta(hours=24))
    assert not w.pinned


def test_pinned_reference_is_used_as_given() -> None:
    settings = DriftSettings(reference_start=datetime(2026, 1, 1), reference_end=datetime(2026, 1, 8))
    w = drift_windows(settings, NOW)
    assert w.pinned
    assert (w.reference_start, w.reference_end) == (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC))


def test_pinned_reference_overlapping_the_current_window_is_cut_at_its_start() -> None:
    settings = DriftSettings(current_hours=24, reference_start=NOW - timedelta(days=3), reference_end=NOW)
    w = drift_windows(settings, NOW)
    assert w.reference_end == w.current_start


def test_naive_times_are_utc_and_offsets_are_converted() -> None:
    settings = load_settings(environ={"CAMPWATCH_DRIFT__REFERENCE_START": "2026-01-01T00:00:00",
                                      "CAMPWATCH_DRIFT__REFERENCE_END": "2026-01-08T02:00:00+02:00"})
    assert settings.drift.reference_start == datetime(2026, 1, 1, tzinfo=UTC)
    assert settings.drift.reference_end == datetime(2026, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(("env", "message"), [
    ({"CAMPWATCH_DRIFT__REFERENCE_START": "2026-01-01T00:00:00"}, "go together"),
    ({"CAMPWATCH_DRIFT__REFERENCE_START": "2026-01-08T00:00:00",
      "CAMPWATCH_DRIFT__REFERENCE_END": "2026-01-01T00:00:00"}, "must be before"),
    ({"CAMPWATCH_DRIFT__MIN_ROWS": "500", "CAMPWATCH_DRIFT__MAX_ROWS": "200"}, "must not exceed max_rows"),
])
def test_inconsistent_drift_settings_are_one_clear_config_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=env)
    assert "drift" in str(caught.value) and message in str(caught.value)
