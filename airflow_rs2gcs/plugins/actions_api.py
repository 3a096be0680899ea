"""The buttons: ``POST api/v1/tenants/{id}/{action}`` checks, then triggers the action's DAG run.

Order of refusals: 401 without a session, 403 for a cross-site request, 404 for an unknown action,
422 for an invalid tenant id, 403 without permission, 409 when the widget does not offer the button
in the tenant's state, 422 with per-field errors for a body the form must correct.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool

from airflow_rs2gcs.plugins.deps import (
    MutatingAccessDep,
    read_tenants,
)
from airflow_rs2gcs.plugins.forms import FormError, action_conf, check_tenant_id
from airflow_rs2gcs.plugins.security import Access, require_action
from airflow_rs2gcs.plugins.triggering import trigger_run
from airflow_rs2gcs.plugins.widget import ACTIONS, action_dag_id, tenant_status, widget_actions

router = APIRouter()


async def json_body(request: Request) -> Any:
    """The request's JSON body (``{}`` when empty); 415 for another content type, 422 for bad JSON."""
    raw = await request.body()
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the body as application/json")
    try:
        return await request.json()
    except ValueError:
        raise FormError({"(body)": "is not valid JSON"}) from None


def act(access: Access, tenant_id: str, action: str, body: Any) -> dict[str, str]:
    """Check the request against permissions, the widget's rules and the form; trigger the run."""
    check_tenant_id(tenant_id)
    require_action(access, tenant_id, action)
    entry = read_tenants().get(tenant_id)
    entry = entry if isinstance(entry, dict) else None
    state = tenant_status(entry)
    if action not in widget_actions(state):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"tenant {tenant_id!r} is {state}: {action} is not offered now "
            f"(allowed: {', '.join(widget_actions(state))})",
        )
    conf = action_conf(action, tenant_id, body, entry)
    dag_id = action_dag_id(action, tenant_id)
    return {"dag_id": dag_id, "run_id": trigger_run(dag_id, conf, access.name)}


@router.post("/tenants/{tenant_id}/{action}", status_code=status.HTTP_202_ACCEPTED)
async def post_action(
    tenant_id: str, action: str, request: Request, access: MutatingAccessDep
) -> dict[str, str]:
    """Press a button: ``{"dag_id", "run_id"}`` of the run it triggered."""
    if action not in ACTIONS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no action {action!r}; actions: {', '.join(ACTIONS)}")
    body = await json_body(request)
    return await run_in_threadpool(act, access, tenant_id, action, body)
