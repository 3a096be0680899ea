"""The thin loader called by ``dags/rs2gcs.py``: read the tenants once per parse, then build the DAGs.

It never raises: a Variable that is not a JSON object of tenants gives one log line and one
placeholder DAG (``rs2gcs_tenants_invalid``) that shows the error, instead of an import error that
Airflow would retry on every parse; a missing Variable quietly means zero tenants.
"""

from __future__ import annotations

import logging

from airflow.sdk import DAG

from airflow_rs2gcs.control_dags import build_control_dags
from airflow_rs2gcs.factory import VARIABLE_ERROR_DAG_ID, build_dags, build_error_dag
from airflow_rs2gcs.store import TenantsVariableError, load_tenants

log = logging.getLogger(__name__)


def load_dags() -> dict[str, DAG]:
    """The control DAGs and every DAG the ``rs2gcs_tenants`` Variable defines, keyed by DAG id."""
    dags = build_control_dags()
    try:
        tenants = load_tenants()
    except TenantsVariableError as exc:
        log.error("rs2gcs: %s", exc)
        dags[VARIABLE_ERROR_DAG_ID] = build_error_dag(VARIABLE_ERROR_DAG_ID, "rs2gcs_tenants", str(exc))
        return dags
    return {**dags, **build_dags(tenants)}
