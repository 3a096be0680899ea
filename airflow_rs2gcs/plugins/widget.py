"""The widget's rules: which buttons a tenant shows in each state, and which DAG each button runs.

Before Connect only **Connect**; once connected **Configure** and **Disconnect**; once configured also
**Sync**. A tenant stuck ``disconnecting`` (a webhook could not be deleted) offers **Disconnect** again,
which finishes the job; a disconnected tenant starts over with **Connect**.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from airflow_rs2gcs.control_dags import CONFIGURE_DAG_ID, CONNECT_DAG_ID, DISCONNECT_DAG_ID
from airflow_rs2gcs.factory import sync_dag_id

Action = Literal["connect", "configure", "sync", "disconnect"]
ACTIONS: tuple[str, ...] = get_args(Action)

CONTROL_DAG_IDS: dict[str, str] = {
    "connect": CONNECT_DAG_ID,
    "configure": CONFIGURE_DAG_ID,
    "disconnect": DISCONNECT_DAG_ID,
}
# The task of each control DAG whose return value (or error) is the run's outcome.
LIFECYCLE_TASK_IDS: dict[str, str] = {
    CONNECT_DAG_ID: "activate",
    CONFIGURE_DAG_ID: "configure",
    DISCONNECT_DAG_ID: "deactivate",
}
NEW = "new"  # a tenant id with no entry in the Variable

_BY_STATUS: dict[str, tuple[str, ...]] = {
    NEW: ("connect",),
    "disconnected": ("connect",),
    "connected": ("configure", "disconnect"),
    "configured": ("configure", "disconnect", "sync"),
    "disconnecting": ("disconnect",),
}


def tenant_status(entry: Mapping[str, Any] | None) -> str:
    """The entry's ``status`` (``new`` without an entry; no status written by hand: connected)."""
    if entry is None:
        return NEW
    status = entry.get("status")
    return status if isinstance(status, str) and status else "connected"


def widget_actions(status: str) -> tuple[str, ...]:
    """The buttons a tenant in ``status`` shows, in the widget's order (unknown status: Disconnect)."""
    return _BY_STATUS.get(status, ("disconnect",))


def action_dag_id(action: str, tenant_id: str) -> str:
    """The DAG a button triggers: a control DAG, or the tenant's sync DAG for ``sync``."""
    return sync_dag_id(tenant_id) if action == "sync" else CONTROL_DAG_IDS[action]


def tenant_dag_ids(tenant_id: str) -> frozenset[str]:
    """Every DAG whose runs can belong to the tenant: the control DAGs and its sync DAG."""
    return frozenset({*CONTROL_DAG_IDS.values(), sync_dag_id(tenant_id)})
