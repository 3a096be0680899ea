"""syncFrequency -> cron with a deterministic stagger -> timetables with real data intervals."""

from __future__ import annotations

from collections import Counter

import pendulum
import pytest
from airflow.sdk import CronDataIntervalTimetable
from airflow.serialization.encoders import coerce_to_core_timetable

from airflow_rs2gcs.schedules import SYNC_FREQUENCIES, cron_for, stagger_minute, timetable_for


def test_one_options_table_keeps_the_widget_labels():
    labels = {o.value: o.label for o in SYNC_FREQUENCIES}
    assert labels["5min"] == "5 minutes" and labels["hourly"] == "1 hour" and labels["daily"] == "1 day"
    assert [o.value for o in SYNC_FREQUENCIES] == [
        "5min",
        "15min",
        "hourly",
        "daily",
        "weekly",
        "monthly",
        "manual",
    ]


def test_stagger_is_deterministic_and_spreads_1000_hourly_tenants():
    minutes = [stagger_minute(f"tenant{i}", 60) for i in range(1000)]
    assert minutes == [stagger_minute(f"tenant{i}", 60) for i in range(1000)]
    per_minute = Counter(minutes)
    assert len(per_minute) == 60 and max(per_minute.values()) < 35  # ~16.7 expected per minute
    assert all(0 <= stagger_minute(f"t{i}", 5) < 5 for i in range(100))


def test_named_frequencies_map_to_staggered_crons_and_explicit_cron_is_kept():
    minute = stagger_minute("acme", 60)
    assert cron_for("acme", "hourly") == f"{minute} * * * *"
    assert cron_for("acme", "daily") == f"{minute} 0 * * *"
    assert cron_for("acme", "5min") == f"{stagger_minute('acme', 5)}-59/5 * * * *"
    assert cron_for("acme", "manual") is None
    assert cron_for("acme", "30 2 * * *") == "30 2 * * *"


@pytest.mark.parametrize(
    "frequency", ["5min", "15min", "hourly", "daily", "weekly", "monthly", "0 6 * * 1-5"]
)
def test_timetables_have_non_empty_intervals_in_the_tenant_zone(frequency):
    timetable = timetable_for("acme", frequency, "America/New_York")
    assert isinstance(timetable, CronDataIntervalTimetable)
    core = coerce_to_core_timetable(timetable)
    assert core.summary == cron_for("acme", frequency)
    interval = core.infer_manual_data_interval(run_after=pendulum.datetime(2026, 11, 24, 12, tz="UTC"))
    assert interval.start < interval.end


def test_manual_has_no_timetable():
    assert timetable_for("acme", "manual", "UTC") is None
