"""A sync run's outcome per table: what the summary task logs, returns and posts to the webhooks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_rs2gcs.engine.paths import table_root
from airflow_rs2gcs.tenants import Tenant


def table_of(tenant: Tenant, object_prefix: str) -> str:
    """The tenant's table whose output folder ``object_prefix`` is in."""
    for table in tenant.tables:
        if object_prefix.startswith(table_root(tenant.prefix, tenant.tenant_id, table.folder) + "/"):
            return table.name
    return object_prefix


def table_outcomes(
    tenant: Tenant,
    planned: Sequence[Mapping[str, Any]],
    results: Sequence[Mapping[str, Any] | None],
    data_interval: tuple[str | None, str | None],
) -> list[dict[str, Any]]:
    """One webhook payload per planned table; a table without a result failed."""
    outcomes = []
    for plan, result in zip(planned, results, strict=True):
        outcome = {
            "tenant": tenant.tenant_id,
            "table": table_of(tenant, plan["object_prefix"]),
            "status": "success" if result else "failed",
            "rows": (result or {}).get("rows", 0),
            "bytes": (result or {}).get("bytes", 0),
            "objects": (result or {}).get("objects", 0),
            "data_interval": {"start": data_interval[0], "end": data_interval[1]},
            "manifest": f"gs://{tenant.bucket}/{result['manifest']}" if result else None,
        }
        outcomes.append(outcome)
    return outcomes


def schema_change_events(
    outcomes: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any] | None]
) -> list[dict[str, Any]]:
    """One ``schema_changed`` payload per table whose export recorded a ``schema_change``."""
    events = []
    for outcome, result in zip(outcomes, results, strict=True):
        change = (result or {}).get("schema_change")
        if change:
            events.append(
                {
                    "event": "schema_changed",
                    **{key: outcome[key] for key in ("tenant", "table", "data_interval", "manifest")},
                    "schema_change": change,
                }
            )
    return events


def totals(outcomes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Tables, failed tables, rows, bytes and objects of a run."""
    return {
        "tables": len(outcomes),
        "failed": sorted(o["table"] for o in outcomes if o["status"] != "success"),
        "rows": sum(o["rows"] for o in outcomes),
        "bytes": sum(o["bytes"] for o in outcomes),
        "objects": sum(o["objects"] for o in outcomes),
    }
