"""Shared by the concurrency tests: many ``airflow dags test rs2gcs_connect`` runs at once, one per tenant."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from rs2gcs_devstack.airflow_home import AirflowHome


def connect_concurrently(
    stack: Any, tenant_ids: list[str], bucket: str, initial_tenants: dict[str, Any]
) -> tuple[list[tuple[int, str]], dict[str, Any]]:
    """Start one ``rs2gcs_connect`` per tenant at the same time on a fresh home whose Variable holds
    ``initial_tenants``; return each run's (exit code, output) and the Variable afterwards."""
    stack.gcs.create_bucket(bucket)
    # Many Airflow processes on two cores parse slowly; give the DAG file more than the default 30 s.
    with AirflowHome({**stack.airflow_env(), "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600"}) as home:
        # SQLite lets one writer in at a time; many processes need a longer busy wait than the default 5 s.
        home.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home.path}/airflow.db?timeout=120"
        home.migrate()
        home.set_variable("rs2gcs_tenants", initial_tenants)
        # Each `dags test` syncs the DAG folder to the DB first; do it once so the runs do not race on it.
        home.run("dags", "reserialize")
        conf = {"redshift_conn_id": "rs2gcs_redshift", "gcp_conn_id": "rs2gcs_gcs", "bucket": bucket}
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
                    json.dumps({**conf, "tenant_id": tenant_id}),
                ],
                env=home.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for tenant_id in tenant_ids
        ]
        outputs = [run.communicate(timeout=1700)[0] for run in runs]
        stored = home.run("variables", "get", "rs2gcs_tenants").stdout
        tenants = json.loads(stored[stored.index("{") :])
    return [(run.returncode, output) for run, output in zip(runs, outputs, strict=True)], tenants
