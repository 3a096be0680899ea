"""A test-only auth manager with DAG-level grants: Airflow's simple auth manager plus per-user tenants.

The simple auth manager knows roles only; the widget's per-tenant authorization needs an auth manager
that answers per DAG (in production: the FAB auth manager or your own). This one reads
``RS2GCS_TEST_TENANT_GRANTS`` (``alice=acme|beta;bob=gamma``): a listed user may read and edit only the
sync DAGs of their tenants (``rs2gcs_sync__<tenant>``) and trigger the control DAGs; every other user
is authorized exactly as the simple auth manager does. Loaded by the api-server through
``AIRFLOW__CORE__AUTH_MANAGER=plugin_auth_manager.TenantGrantsAuthManager`` with this folder on
``PYTHONPATH`` (tests/integration/test_plugin_api.py).
"""

from __future__ import annotations

import os
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

GRANTS_ENV = "RS2GCS_TEST_TENANT_GRANTS"
CONTROL_DAG_IDS = frozenset({"rs2gcs_connect", "rs2gcs_configure", "rs2gcs_disconnect"})


def tenant_grants() -> dict[str, set[str]]:
    """User -> tenant ids, from ``RS2GCS_TEST_TENANT_GRANTS``."""
    grants: dict[str, set[str]] = {}
    for item in filter(None, os.environ.get(GRANTS_ENV, "").split(";")):
        user, _, tenants = item.partition("=")
        grants[user.strip()] = {t.strip() for t in tenants.split("|") if t.strip()}
    return grants


class TenantGrantsAuthManager(SimpleAuthManager):
    """SimpleAuthManager, except that granted users reach only their tenants' sync DAGs."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        tenants = tenant_grants().get(user.get_name())
        if tenants is None:
            return super().is_authorized_dag(
                method=method, user=user, access_entity=access_entity, details=details
            )
        dag_id = getattr(details, "id", None)
        if dag_id is None:  # "any DAG" (menus, lists): reading only
            return method == "GET"
        return dag_id in CONTROL_DAG_IDS or dag_id in {f"rs2gcs_sync__{t}" for t in tenants}
