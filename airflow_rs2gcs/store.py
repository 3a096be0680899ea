"""The only place that reads (and, for the lifecycle operators, writes) the ``rs2gcs_tenants`` Variable.

Reading at DAG-parse time has one trap (see ``docs/tenant-contract.md``, "Where the DAG file reads the
Variable"):
inside the dag-processor and inside tasks, Airflow 3 serves Variables through the Task SDK
(the supervisor's channel to the API server); everywhere else (``airflow dags test``, ``airflow dags
list``, a pytest ``DagBag``) the Task SDK's ``Variable.get`` sees only ``AIRFLOW_VAR_*`` environment
variables and secrets backends, never the metadata DB. :func:`read_variable_text` picks the right
path itself, so an engineer never has to know: the Task SDK where a supervisor is present, the
core chain (secrets backends, environment, then the metadata DB) everywhere else.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from airflow_rs2gcs.variable_lock import BakeryLock, VariableRegisters

log = logging.getLogger(__name__)

TENANTS_VARIABLE = "rs2gcs_tenants"


class TenantsVariableError(ValueError):
    """The Variable exists but is not a JSON object of tenant entries."""


def _in_supervised_process() -> bool:
    # Set by the Task SDK in dag-processor parsing processes, task processes and the triggerer.
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return hasattr(runner, "SUPERVISOR_COMMS")


def read_variable_text(key: str = TENANTS_VARIABLE) -> str | None:
    """The Variable's raw text, or ``None`` when it does not exist, in any Airflow process."""
    if _in_supervised_process():
        from airflow.sdk import Variable

        return Variable.get(key, default=None)
    from airflow.models.variable import Variable as MetastoreVariable

    return MetastoreVariable.get(key, default_var=None)


def parse_tenants_json(text: str | None) -> dict[str, Any]:
    """The tenants mapping from the Variable's text: ``{}`` when missing or empty, else a JSON object."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TenantsVariableError(
            f"Variable {TENANTS_VARIABLE!r} is not valid JSON ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno}); it must be a JSON object keyed by tenant id"
        ) from None
    if not isinstance(value, dict):
        raise TenantsVariableError(
            f"Variable {TENANTS_VARIABLE!r} must be a JSON object keyed by tenant id, "
            f"got {type(value).__name__}"
        )
    return value


def load_tenants() -> dict[str, Any]:
    """Read and parse the Variable once; a missing Variable means no tenants."""
    return parse_tenants_json(read_variable_text(TENANTS_VARIABLE))


# --- writes (lifecycle operators, inside tasks) ------------------------------------------------------

# Each lifecycle run waiting for, or holding, the right to write the tenants Variable has one Variable
# under this prefix while it does (see variable_lock.py); the Variables page lists them meanwhile.
LOCK_PREFIX = "rs2gcs_tenants_lock."
LOCK_DESCRIPTION = (
    "rs2gcs: a control run's place in line to write rs2gcs_tenants; deleted when the run has written "
    "(see the rs2gcs docs: control DAGs, concurrent changes)"
)


def tenants_lock() -> BakeryLock:
    """The lock every write of the tenants Variable holds, kept in Variables named ``LOCK_PREFIX*``."""
    return BakeryLock(LOCK_PREFIX, VariableRegisters(LOCK_DESCRIPTION))


def write_tenants(tenants: dict[str, Any]) -> None:
    """Replace the Variable with ``tenants`` (pretty-printed, so hand edits stay easy)."""
    from airflow.sdk import Variable

    Variable.set(
        TENANTS_VARIABLE,
        json.dumps(tenants, indent=2, sort_keys=True, ensure_ascii=False),
        description="rs2gcs tenants (see the rs2gcs README: tenant contract)",
    )


def update_tenant(tenant_id: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> None:
    """Apply ``change`` to one tenant's entry under the lock; ``None`` from it removes the entry.

    The Variable is re-read inside the lock, so concurrent lifecycle runs for other tenants never
    overwrite each other's entries. A tenant id is always text: ``123`` and ``"123"`` are different
    keys to Python but the same key to JSON, so anything but a ``str`` is refused before the lock.
    """
    if not isinstance(tenant_id, str):
        raise TypeError(
            f"tenant id {tenant_id!r} is a {type(tenant_id).__name__}, not text; tenant ids are strings "
            "end to end (was the id rendered with render_template_as_native_obj=True?)"
        )
    with tenants_lock().hold() as acquisition:
        took = time.monotonic()
        tenants = parse_tenants_json(read_variable_text(TENANTS_VARIABLE))
        updated = change(tenants.get(tenant_id))
        if updated is None:
            tenants.pop(tenant_id, None)
        else:
            tenants[tenant_id] = updated
        write_tenants(tenants)
        log.info(
            "took the tenants lock after %.2f s (%d other run(s) in line) and wrote in %.2f s",
            acquisition.waited_seconds,
            acquisition.others,
            time.monotonic() - took,
        )
