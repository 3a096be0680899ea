"""Load: a thousand tenants in one Variable, in-process.

1000 tenants (ready on a schedule, ready but manual, disconnected, and 1% invalid) go through the
loader and the factory in-process, as ``dags/rs2gcs.py`` does: every tenant that should have a DAG has
exactly its own (a placeholder for each invalid one), the disconnected have none, and the build time is
printed; the same Variable through a ``DagBag`` of the real DAG folder gives the same DAG ids.
(Twenty concurrent lifecycle runs: tests/integration/test_load_concurrent_connects.py.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from airflow_rs2gcs.factory import SYNC_DAG_PREFIX
from airflow_rs2gcs.loader import load_dags

pytestmark = [pytest.mark.timeout(1800)]

TENANTS = 1000
DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
CONTROL_DAG_IDS = {"rs2gcs_connect", "rs2gcs_configure", "rs2gcs_disconnect"}


def tenant_entry(index: int) -> dict:
    """Tenant ``index`` of the mix: every 100th invalid, every 10th disconnected, every 4th manual."""
    entry = {
        "source": "redshift_to_gcs",
        "status": "configured",
        "redshift_conn_id": f"redshift_{index % 7}",
        "gcp_conn_id": "gcs",
        "bucket": f"bucket-{index % 13}",
        "prefix": "redshift",
        "syncFrequency": ["5min", "hourly", "daily", "weekly", "*/20 * * * *"][index % 5],
        "timezone": ["UTC", "Europe/Berlin", "America/New_York"][index % 3],
        "tables": [
            {"name": "public.orders", "mode": "incremental", "cursor_column": "updated_at"},
            {"name": "public.customers"},
        ],
    }
    if index % 100 == 99:
        return {**entry, "syncFrequency": "every blue moon"}
    if index % 10 == 5:
        return {
            "source": "redshift_to_gcs",
            "status": "disconnected",
            "disconnected_at": "2026-11-01T00:00:00",
        }
    if index % 4 == 1:
        return {**entry, "syncFrequency": "manual"}
    return entry


def thousand_tenants() -> dict[str, dict]:
    return {f"t{index:04d}": tenant_entry(index) for index in range(TENANTS)}


def expected_dag_ids(tenants: dict[str, dict]) -> set[str]:
    return {f"{SYNC_DAG_PREFIX}{t}" for t, e in tenants.items() if e["status"] != "disconnected"}


def test_a_thousand_tenants_build_through_the_loader(monkeypatch):
    tenants = thousand_tenants()
    monkeypatch.setenv("AIRFLOW_VAR_RS2GCS_TENANTS", json.dumps(tenants))
    started = time.perf_counter()
    dags = load_dags()
    seconds = time.perf_counter() - started
    print(f"\nloader + factory: {TENANTS} tenants -> {len(dags)} DAGs in {seconds:.1f} s")

    assert set(dags) == expected_dag_ids(tenants) | CONTROL_DAG_IDS
    invalid = [t for t, e in tenants.items() if e.get("syncFrequency") == "every blue moon"]
    assert len(invalid) == TENANTS // 100
    for tenant_id in invalid:
        dag = dags[f"{SYNC_DAG_PREFIX}{tenant_id}"]
        assert dag.task_ids == ["invalid_configuration"] and "'syncFrequency'" in dag.doc_md
    manual = [t for t, e in tenants.items() if e.get("syncFrequency") == "manual"]
    assert all(dags[f"{SYNC_DAG_PREFIX}{t}"].schedule is None for t in manual)
    scheduled = [t for t in expected_dag_ids(tenants) - {f"{SYNC_DAG_PREFIX}{t}" for t in invalid + manual}]
    assert len(scheduled) > 500
    assert all(
        set(dags[d].task_ids) == {"plan", "small_table_groups", "sync_table", "sync_small_tables", "summary"}
        for d in scheduled
    )


def test_a_thousand_tenants_in_a_dagbag_of_the_dag_folder(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    tenants = thousand_tenants()
    monkeypatch.setenv("AIRFLOW_VAR_RS2GCS_TENANTS", json.dumps(tenants))
    monkeypatch.setenv("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "600")
    started = time.perf_counter()
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    seconds = time.perf_counter() - started
    print(f"\nDagBag of dags/: {TENANTS} tenants -> {len(bag.dag_ids)} DAGs in {seconds:.1f} s")
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == expected_dag_ids(tenants) | CONTROL_DAG_IDS
