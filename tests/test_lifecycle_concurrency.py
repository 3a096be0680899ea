"""No lost updates: concurrent lifecycle runs for different tenants all land in ``rs2gcs_tenants``.

Ten ``airflow dags test rs2gcs_connect`` processes, one per tenant, run at the same time against the
real stack; each does its checks and then a read-modify-write of the one Variable. Every tenant must
be recorded, and an entry written by hand beforehand must survive untouched.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from airflow_rs2gcs.devstack.airflow_home import AirflowHome

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

RUNS = 10
HAND_WRITTEN = {
    "source": "redshift_to_gcs",
    "status": "connected",
    "redshift_conn_id": "by_hand",
    "gcp_conn_id": "by_hand",
    "bucket": "hand-bucket",
}


def test_ten_concurrent_connects_lose_no_update(stack):
    stack.gcs.create_bucket("concurrent-exports")
    # Ten Airflow processes on two cores parse slowly; give the DAG file more than the default 30 s.
    with AirflowHome({**stack.airflow_env(), "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600"}) as home:
        # SQLite lets one writer in at a time; ten processes need a longer busy wait than the default 5 s.
        home.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home.path}/airflow.db?timeout=120"
        home.migrate()
        home.set_variable("rs2gcs_tenants", {"handmade": HAND_WRITTEN})
        # Each `dags test` syncs the DAG folder to the DB first; do it once so the runs do not race on it.
        home.run("dags", "reserialize")
        conf = {
            "redshift_conn_id": "rs2gcs_redshift",
            "gcp_conn_id": "rs2gcs_gcs",
            "bucket": "concurrent-exports",
        }
        runs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "airflow",
                    "dags",
                    "test",
                    "rs2gcs_connect",
                    "--conf",
                    json.dumps({**conf, "tenant_id": f"tenant{i:02d}"}),
                ],
                env=home.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for i in range(RUNS)
        ]
        outputs = [run.communicate(timeout=800)[0] for run in runs]
        for run, output in zip(runs, outputs, strict=True):
            assert run.returncode == 0, output[-3000:]
            assert "Activation successful for redshift_to_gcs" in output
        stored = home.run("variables", "get", "rs2gcs_tenants").stdout
        tenants = json.loads(stored[stored.index("{") :])
    assert sorted(tenants) == ["handmade"] + [f"tenant{i:02d}" for i in range(RUNS)]
    assert tenants["handmade"] == HAND_WRITTEN
    assert all(tenants[f"tenant{i:02d}"]["status"] == "connected" for i in range(RUNS))
