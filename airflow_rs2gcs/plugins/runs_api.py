"""A tenant's runs: ``GET api/v1/tenants/{id}/runs`` (sync history) and ``.../runs/{dag_id}/{run_id}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from airflow_rs2gcs.engine.paths import table_root
from airflow_rs2gcs.factory import sync_dag_id
from airflow_rs2gcs.plugins.deps import (
    AccessDep,
    SessionDep,
    read_tenants,
)
from airflow_rs2gcs.plugins.forms import check_tenant_id
from airflow_rs2gcs.plugins.history import find_run, iso, recent_runs, summaries
from airflow_rs2gcs.plugins.outcome import describe_run
from airflow_rs2gcs.plugins.security import require_read
from airflow_rs2gcs.plugins.widget import CONTROL_DAG_IDS
from airflow_rs2gcs.tenants import TenantConfigError, parse_tenant

router = APIRouter()
MAX_RUNS = 200


@router.get("/tenants/{tenant_id}/runs")
def list_runs(
    tenant_id: str,
    access: AccessDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_RUNS)] = 30,
) -> dict[str, Any]:
    """The tenant's last sync runs, newest first, with rows, bytes and tables from their summaries."""
    check_tenant_id(tenant_id)
    require_read(access, tenant_id)
    runs = recent_runs(session, sync_dag_id(tenant_id), limit)
    sums = summaries(session, runs)
    return {
        "runs": [
            {
                "run_id": run.run_id,
                "state": run.state,
                "start": iso(run.start or run.run_after),
                "end": iso(run.end),
                "duration_seconds": run.duration_seconds,
                "rows": sums.get(run.pk, {}).get("rows"),
                "bytes": sums.get(run.pk, {}).get("bytes"),
                "tables": sums.get(run.pk, {}).get("tables"),
            }
            for run in runs
        ]
    }


def table_roots(tenant_id: str, entry: Any) -> tuple[str | None, dict[str, str]]:
    """The tenant's bucket and ``{output folder: table name}`` (empty when the entry does not parse)."""
    if not isinstance(entry, Mapping):
        return None, {}
    try:
        tenant = parse_tenant(tenant_id, entry)
    except TenantConfigError:
        return entry.get("bucket"), {}
    return tenant.bucket, {
        table_root(tenant.prefix, tenant_id, table.folder): table.name for table in tenant.tables
    }


@router.get("/tenants/{tenant_id}/runs/{dag_id}/{run_id}")
def get_run(
    tenant_id: str,
    dag_id: str,
    run_id: str,
    access: AccessDep,
    session: SessionDep,
) -> dict[str, Any]:
    """A run of the tenant (its sync DAG, or a control DAG run for it): state, message, error, tables."""
    check_tenant_id(tenant_id)
    require_read(access, tenant_id)
    not_found = HTTPException(
        status.HTTP_404_NOT_FOUND, f"no run {run_id!r} of {dag_id} for tenant {tenant_id!r}"
    )
    if dag_id != sync_dag_id(tenant_id) and dag_id not in CONTROL_DAG_IDS.values():
        raise not_found
    found = find_run(session, dag_id, run_id)
    if found is None:
        raise not_found
    run, conf = found
    if dag_id in CONTROL_DAG_IDS.values() and conf.get("tenant_id") != tenant_id:
        raise not_found
    bucket, roots = table_roots(tenant_id, read_tenants().get(tenant_id))
    return describe_run(session, run, conf, bucket, roots)
