"""The DAG file in a real DagBag, in its own process with a throwaway AIRFLOW_HOME: tenants from the
Variable in the metadata DB, from an environment variable, a broken Variable and none."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_rs2gcs.factory import VARIABLE_ERROR_DAG_ID

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
CONTROL_DAG_IDS = {"rs2gcs_connect", "rs2gcs_configure", "rs2gcs_disconnect"}

GOOD = {
    "redshift_conn_id": "rs",
    "gcp_conn_id": "gcs",
    "bucket": "acme-exports",
    "prefix": "redshift",
    "syncFrequency": "hourly",
    "timezone": "Europe/Berlin",
    "tables": [
        {"name": "public.orders", "mode": "incremental", "cursor_column": "updated_at"},
        {"name": "public.customers"},
        {"name": "daily_revenue", "query": "select 1 as x"},
    ],
}


DAGBAG_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1])
    errors = {k: str(v) for k, v in bag.import_errors.items()}
    print(json.dumps({"dags": sorted(bag.dag_ids), "errors": errors}))
    """
)


def _dagbag(home) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", DAGBAG_SCRIPT, str(DAGS_FOLDER)],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(parsed["dags"]) >= CONTROL_DAG_IDS  # the control DAGs are always there
    parsed["dags"] = [d for d in parsed["dags"] if d not in CONTROL_DAG_IDS]
    return parsed


@pytest.fixture(scope="module")
def home():
    from rs2gcs_devstack.airflow_home import AirflowHome

    with AirflowHome() as airflow_home:
        airflow_home.migrate()
        yield airflow_home


@pytest.mark.integration
def test_pytest_dagbag_sees_db_variable_env_variable_and_bad_json(home):
    home.set_variable("rs2gcs_tenants", {"acme": GOOD, "moon": {**GOOD, "syncFrequency": "every blue moon"}})
    assert _dagbag(home) == {"dags": ["rs2gcs_sync__acme", "rs2gcs_sync__moon"], "errors": {}}

    home.env["AIRFLOW_VAR_RS2GCS_TENANTS"] = json.dumps({"envco": GOOD})
    try:
        assert _dagbag(home)["dags"] == ["rs2gcs_sync__envco"]  # env wins over the DB, as in Airflow
    finally:
        del home.env["AIRFLOW_VAR_RS2GCS_TENANTS"]

    home.set_variable("rs2gcs_tenants", "{not json")
    assert _dagbag(home) == {"dags": [VARIABLE_ERROR_DAG_ID], "errors": {}}

    home.run("variables", "delete", "rs2gcs_tenants")
    assert _dagbag(home) == {"dags": [], "errors": {}}
