"""The tenant list: filter, order and page the tenants of the Variable, then describe one page of them.

Filtering and paging are pure (ids only); only the page's tenants are looked up in the metadata DB,
with a fixed number of queries (:mod:`airflow_rs2gcs.plugins.history`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from airflow_rs2gcs.factory import sync_dag_id
from airflow_rs2gcs.plugins.history import RunRow, iso, last_runs, next_runs, summaries
from airflow_rs2gcs.plugins.widget import tenant_status
from airflow_rs2gcs.schedules import frequency_option

MAX_LIMIT = 500


def matching_ids(tenant_ids: Iterable[str], q: str = "") -> list[str]:
    """The ids containing ``q`` (case-insensitive), sorted."""
    needle = q.strip().casefold()
    return sorted(t for t in tenant_ids if needle in t.casefold())


def page_of(ids: list[str], offset: int, limit: int) -> list[str]:
    """``limit`` ids from ``offset`` (both clamped to sane bounds)."""
    offset, limit = max(offset, 0), min(max(limit, 0), MAX_LIMIT)
    return ids[offset : offset + limit]


def frequency_of(entry: Mapping[str, Any] | None) -> dict[str, str] | None:
    """``{"value", "label"}`` of the entry's syncFrequency (a cron expression is its own label)."""
    value = (entry or {}).get("syncFrequency")
    if not isinstance(value, str) or not value.strip():
        return None
    option = frequency_option(value)
    if option is None:
        return {"value": value, "label": f"cron: {value}"}
    return {"value": option.value, "label": option.label}


def last_sync(run: RunRow | None, summary: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The list's ``last_sync`` of a run and its summary."""
    if run is None:
        return None
    return {
        "run_id": run.run_id,
        "state": run.state,
        "when": iso(run.start or run.run_after),
        "rows": (summary or {}).get("rows"),
        "bytes": (summary or {}).get("bytes"),
        "duration_seconds": run.duration_seconds,
    }


def tenant_line(
    tenant_id: str, entry: Any, run: RunRow | None, summary: Mapping[str, Any] | None, next_at: Any
) -> dict[str, Any]:
    """One line of the tenant list."""
    entry = entry if isinstance(entry, Mapping) else None
    tables = (entry or {}).get("tables")
    status = tenant_status(entry)
    return {
        "tenant_id": tenant_id,
        "status": status,
        "sync_frequency": frequency_of(entry),
        "table_count": len(tables) if isinstance(tables, list) else 0,
        "last_sync": last_sync(run, summary),
        # Only a configured tenant has a sync DAG: a disconnected one's lingers (with its next run) until
        # the dag-processor's next parse marks it stale, and must not be shown as scheduled meanwhile.
        "next_sync": iso(next_at) if status == "configured" else None,
    }


def describe_page(session: Session, tenants: Mapping[str, Any], ids: list[str]) -> list[dict[str, Any]]:
    """The lines of one page: three queries (last runs, their summaries, next runs) whatever its size."""
    dag_ids = {sync_dag_id(t): t for t in ids}
    runs = last_runs(session, dag_ids)
    sums = summaries(session, runs.values())
    upcoming = next_runs(session, dag_ids)
    lines = []
    for tenant_id in ids:
        run = runs.get(sync_dag_id(tenant_id))
        summary = sums.get(run.pk) if run is not None else None
        lines.append(
            tenant_line(tenant_id, tenants.get(tenant_id), run, summary, upcoming.get(sync_dag_id(tenant_id)))
        )
    return lines
