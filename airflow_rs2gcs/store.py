"""The only place that reads (and, for the lifecycle operators, writes) the ``rs2gcs_tenants`` Variable.

Reading at DAG-parse time has one trap (see the README, "Where the factory reads its tenants"):
inside the dag-processor and inside tasks, Airflow 3 serves Variables through the Task SDK
(the supervisor's channel to the API server); everywhere else (``airflow dags test``, ``airflow dags
list``, a pytest ``DagBag``) the Task SDK's ``Variable.get`` sees only ``AIRFLOW_VAR_*`` environment
variables and secrets backends, never the metadata DB. :func:`read_variable_text` picks the right
path itself, so an engineer never has to know: the Task SDK where a supervisor is present, the
core chain (environment, secrets backends, then the metadata DB) everywhere else.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

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
