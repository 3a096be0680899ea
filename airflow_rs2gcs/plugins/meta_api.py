"""``GET api/v1/meta``: what the page's forms offer (frequencies, formats, time zones, connections, user)."""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_rs2gcs.plugins.deps import AccessDep, SessionDep
from airflow_rs2gcs.schedules import SYNC_FREQUENCIES
from airflow_rs2gcs.tenants import FORMATS

router = APIRouter()

TIMEZONES_HINT = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)
CONNECTION_TYPES = {"redshift": ("redshift",), "gcp": ("google_cloud_platform", "gcpbigquery")}


def _env_connection_type(value: str) -> str:
    """The type of an ``AIRFLOW_CONN_*`` value (JSON or URI)."""
    text = value.strip()
    if text.startswith("{"):
        try:
            return str(json.loads(text).get("conn_type") or "")
        except (json.JSONDecodeError, AttributeError):
            return ""
    return text.split(":", 1)[0].replace("-", "_")


def connection_ids(session: Session) -> dict[str, list[str]]:
    """Connection ids by kind, from the metadata DB and ``AIRFLOW_CONN_*`` environment variables."""
    from airflow.models.connection import Connection

    found: dict[str, set[str]] = {kind: set() for kind in CONNECTION_TYPES}
    rows = session.execute(select(Connection.conn_id, Connection.conn_type)).all()
    env = [
        (key.removeprefix("AIRFLOW_CONN_").lower(), _env_connection_type(value))
        for key, value in os.environ.items()
        if key.startswith("AIRFLOW_CONN_")
    ]
    for conn_id, conn_type in [*rows, *env]:
        for kind, types in CONNECTION_TYPES.items():
            if conn_type in types:
                found[kind].add(str(conn_id))
    return {kind: sorted(ids) for kind, ids in found.items()}


@router.get("/meta")
def meta(access: AccessDep, session: SessionDep) -> dict[str, Any]:
    """The forms' choices; connection ids only for a user who may press a button."""
    can_post = access.can_post()
    return {
        "frequencies": [{"value": o.value, "label": o.label} for o in SYNC_FREQUENCIES],
        "formats": list(FORMATS),
        "timezones_hint": list(TIMEZONES_HINT),
        "connections": connection_ids(session) if can_post else {kind: [] for kind in CONNECTION_TYPES},
        "user": {"name": access.name, "can_post": can_post},
    }
