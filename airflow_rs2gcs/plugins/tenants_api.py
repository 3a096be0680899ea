"""Read routes: the tenant list (``GET api/v1/tenants``) and one tenant (``GET api/v1/tenants/{id}``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from airflow_rs2gcs.factory import sync_dag_id
from airflow_rs2gcs.plugins.deps import (
    AccessDep,
    SessionDep,
    read_tenants,
)
from airflow_rs2gcs.plugins.forms import check_tenant_id
from airflow_rs2gcs.plugins.listing import MAX_LIMIT, describe_page, matching_ids, page_of
from airflow_rs2gcs.plugins.masking import mask_secrets
from airflow_rs2gcs.plugins.security import Access, require_read
from airflow_rs2gcs.plugins.widget import tenant_status, widget_actions

router = APIRouter()


@router.get("/tenants")
def list_tenants(
    access: AccessDep,
    session: SessionDep,
    q: str = "",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    """The tenants this user may read, filtered by ``q`` on the id, one page of them with their runs."""
    tenants = read_tenants()
    ids = matching_ids(tenants, q)
    readable = access.readable(ids)
    visible = [t for t in ids if t in readable]
    page = page_of(visible, offset, limit)
    return {
        "tenants": describe_page(session, tenants, page),
        "total": len(visible),
        "offset": offset,
        "limit": limit,
    }


def allowed_actions(access: Access, tenant_id: str, status: str) -> list[str]:
    """The buttons the widget shows in ``status`` that this user may also use."""
    return [a for a in widget_actions(status) if access.can_act(tenant_id, a)]


@router.get("/tenants/{tenant_id}")
def get_tenant(tenant_id: str, access: AccessDep) -> dict[str, Any]:
    """One tenant: its entry with secrets masked and the buttons allowed now; ``status: new`` if none."""
    check_tenant_id(tenant_id)
    require_read(access, tenant_id)
    entry = read_tenants().get(tenant_id)
    entry = entry if isinstance(entry, dict) else None
    status = tenant_status(entry)
    return {
        "tenant_id": tenant_id,
        "status": status,
        "entry": mask_secrets(entry) if entry is not None else None,
        "actions": allowed_actions(access, tenant_id, status),
        "sync_dag_id": sync_dag_id(tenant_id),
    }
