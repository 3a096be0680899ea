"""syncFrequency: the one table of options (value, label), and its mapping onto Airflow timetables.

The table below is the single source of truth for the sync frequencies: the tenant model validates
against it, the factory schedules from it and the configure form (``rs2gcs_configure``) renders its
labelled dropdown from it.

Stagger: with many tenants on the same frequency, starting them all at minute 0 would hit the
Redshift clusters and the scheduler at once. Every named frequency is therefore shifted by a minute
offset derived from the tenant id (``sha256(tenant_id)``, stable across processes and releases,
unlike Python's ``hash``). An explicit cron expression is taken exactly as written.

Every schedule uses :class:`~airflow.sdk.CronDataIntervalTimetable`, so a run covers the real
interval from the previous tick to its own tick (Airflow 3's default cron timetable gives
zero-length intervals, which would break incremental windows).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from airflow.sdk import CronDataIntervalTimetable
from croniter import croniter


@dataclass(frozen=True)
class SyncFrequency:
    """One option of the syncFrequency dropdown.

    :param value: what is stored in the tenant's ``syncFrequency``.
    :param label: what the dropdown shows (the widget's own labels where it has one).
    :param cron: cron template with ``{minute}`` for the tenant's stagger; ``None`` means no schedule.
    :param period_minutes: the stagger is taken modulo this (the option's period, capped at an hour).
    """

    value: str
    label: str
    cron: str | None
    period_minutes: int


SYNC_FREQUENCIES: tuple[SyncFrequency, ...] = (
    SyncFrequency("5min", "5 minutes", "{minute}-59/5 * * * *", 5),
    SyncFrequency("15min", "15 minutes", "{minute}-59/15 * * * *", 15),
    SyncFrequency("hourly", "1 hour", "{minute} * * * *", 60),
    SyncFrequency("daily", "1 day", "{minute} 0 * * *", 60),
    SyncFrequency("weekly", "1 week (Mondays)", "{minute} 0 * * 1", 60),
    SyncFrequency("monthly", "1 month (1st day)", "{minute} 0 1 * *", 60),
    SyncFrequency("manual", "Manual only (no schedule)", None, 1),
)

_BY_KEY: dict[str, SyncFrequency] = {
    key: option for option in SYNC_FREQUENCIES for key in (option.value.lower(), option.label.lower())
}

ALLOWED_DESCRIPTION = (
    ", ".join(f"{o.value!r} ({o.label})" for o in SYNC_FREQUENCIES)
    + ", or a 5-field cron expression such as '30 2 * * *'"
)


def frequency_option(value: str) -> SyncFrequency | None:
    """Return the named option for a value or its label (case-insensitive), ``None`` for anything else."""
    return _BY_KEY.get(value.strip().lower())


def is_cron_expression(value: str) -> bool:
    """True for a valid 5-field cron expression (no seconds field, no ``@`` presets)."""
    return len(value.split()) == 5 and croniter.is_valid(value)


def normalise_frequency(value: str) -> str:
    """Map a label to its value and tidy a cron expression; raise ``ValueError`` naming what is allowed."""
    option = frequency_option(value)
    if option is not None:
        return option.value
    if is_cron_expression(value):
        return " ".join(value.split())
    raise ValueError(f"{value!r} is not a sync frequency; allowed: {ALLOWED_DESCRIPTION}")


def stagger_minute(tenant_id: str, period_minutes: int) -> int:
    """The tenant's deterministic start offset in minutes, in ``[0, min(period, 60))``."""
    digest = hashlib.sha256(tenant_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % min(period_minutes, 60)


def cron_for(tenant_id: str, frequency: str) -> str | None:
    """The cron expression a tenant runs on, with its stagger; ``None`` for ``manual``."""
    option = frequency_option(frequency)
    if option is None:
        return " ".join(frequency.split())
    if option.cron is None:
        return None
    return option.cron.format(minute=stagger_minute(tenant_id, option.period_minutes))


def timetable_for(tenant_id: str, frequency: str, timezone: str) -> CronDataIntervalTimetable | None:
    """The timetable of a tenant's sync DAG: real data intervals in the tenant's time zone."""
    cron = cron_for(tenant_id, frequency)
    if cron is None:
        return None
    return CronDataIntervalTimetable(cron, timezone=timezone)
