"""The live table picker: ``GET api/v1/tenants/{id}/catalog`` and ``.../columns``, read from Redshift.

Each request opens the tenant's Redshift connection with :class:`RedshiftCatalogHook` (the same hook
``rs2gcs_configure`` checks the selection with), so the picker lists exactly what a sync can read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Query, status

from airflow_rs2gcs.identifiers import InvalidTableName, parse_table_name
from airflow_rs2gcs.plugins.deps import AccessDep, read_tenants
from airflow_rs2gcs.plugins.forms import FormError, check_tenant_id
from airflow_rs2gcs.plugins.security import require_read

router = APIRouter()
T = TypeVar("T")
MAX_PAGE_SIZE = 1000


def catalog_hook(tenant_id: str) -> Any:
    """The catalog hook on the tenant's Redshift connection; 409 if the tenant has none yet."""
    from airflow_rs2gcs.hooks.redshift_catalog import RedshiftCatalogHook

    entry = read_tenants().get(tenant_id)
    conn_id = entry.get("redshift_conn_id") if isinstance(entry, dict) else None
    if not conn_id:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"tenant {tenant_id!r} has no Redshift connection yet: Connect it first"
        )
    return RedshiftCatalogHook(redshift_conn_id=conn_id)


def from_redshift(tenant_id: str, read: Callable[[], T]) -> T:
    """Run a catalog read; 502 naming the error when Redshift cannot be reached or refuses it."""
    try:
        return read()
    except HTTPException:
        raise
    except Exception as exc:
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY,
            f"Redshift catalog of tenant {tenant_id!r} could not be read: {type(exc).__name__}: {exc}",
        ) from None


@router.get("/tenants/{tenant_id}/catalog")
def catalog_page(
    tenant_id: str,
    access: AccessDep,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
    page_token: str = "",
    q: str = "",
    kind: str = "",
) -> dict[str, Any]:
    """One page of the relations the tenant's connection can SELECT, with the total under the filters."""
    from airflow_rs2gcs.hooks.redshift_catalog import KIND_FILTERS, InvalidPageToken, decode_page_token

    check_tenant_id(tenant_id)
    require_read(access, tenant_id)
    errors = {}
    if kind not in KIND_FILTERS:
        errors["kind"] = f"{kind!r} is not a kind; allowed: '', 'table', 'view'"
    try:
        if page_token:
            decode_page_token(page_token)
    except InvalidPageToken as exc:
        errors["page_token"] = str(exc)
    if errors:
        raise FormError(errors)
    hook = catalog_hook(tenant_id)
    page, total = from_redshift(tenant_id, lambda: hook.browse(page_size, page_token or None, q, kind))
    return {
        "relations": [
            {"schema": r.schema, "name": r.name, "kind": r.kind, "qualified_name": r.qualified}
            for r in page.relations
        ],
        "next_page_token": page.next_page_token,
        "total": total,
    }


@router.get("/tenants/{tenant_id}/columns")
def table_columns(tenant_id: str, table: str, access: AccessDep) -> dict[str, Any]:
    """The columns of one relation the connection can read; ``cursor_candidate`` marks date/time columns."""
    check_tenant_id(tenant_id)
    require_read(access, tenant_id)
    try:
        parse_table_name(table)
    except InvalidTableName as exc:
        raise FormError({"table": f"{table!r} is not a table name: {exc}"}) from None
    hook = catalog_hook(tenant_id)
    if not from_redshift(tenant_id, lambda: hook.can_read(table)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no relation {table!r} readable by this connection")
    columns = from_redshift(tenant_id, lambda: hook.columns(table))
    return {
        "columns": [{"name": c.name, "type": c.type, "cursor_candidate": c.cursor_candidate} for c in columns]
    }
