"""Shared by the concurrency tests: many ``airflow dags test rs2gcs_connect`` runs at once, one per tenant."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from typing import Any

from rs2gcs_devstack.airflow_home import AirflowHome

LOCK_WAIT = re.compile(r"took the tenants lock after (\d+\.\d+) s")
LOCK_LINE = re.compile(r"took the tenants lock after .*")


def lock_waits(outputs: list[str]) -> list[float]:
    """Seconds each run waited for the tenants lock, from the line ``store.update_tenant`` logs."""
    return [float(wait) for output in outputs for wait in LOCK_WAIT.findall(output)]


def _metadata_database(stack: Any) -> str:
    """A fresh PostgreSQL metadata database on the stack's server, as a deployment has: with SQLite
    every Variable write of twenty processes queues for one file lock, which is not what is measured."""
    name = f"rs2gcs_concurrent_{secrets.token_hex(4)}"
    stack.postgres.psql(
        f"SET password_encryption = 'md5'; CREATE ROLE {name} LOGIN PASSWORD '{name}';"
        f" CREATE DATABASE {name} OWNER {name};"
    )
    pg = stack.postgres
    return f"postgresql+psycopg2://{name}:{name}@{pg.host}:{pg.port}/{name}"


def lock_lines(outputs: list[str]) -> list[str]:
    """The lock's log line of each run: its wait, the runs in line and how long it held the lock."""
    return [line for output in outputs for line in LOCK_LINE.findall(output)]


def connect_concurrently(
    stack: Any, tenant_ids: list[str], bucket: str, initial_tenants: dict[str, Any]
) -> tuple[list[tuple[int, str]], dict[str, Any], list[str]]:
    """Start one ``rs2gcs_connect`` per tenant at the same time on a fresh home whose Variable holds
    ``initial_tenants``; return each run's (exit code, output), the tenants Variable afterwards and
    the keys of all Variables left behind."""
    stack.gcs.create_bucket(bucket)
    # Many Airflow processes on two cores parse slowly; give the DAG file more than the default 30 s.
    with AirflowHome({**stack.airflow_env(), "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600"}) as home:
        home.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = _metadata_database(stack)
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
        listed = home.run("variables", "list", "--output", "json").stdout
        keys = [variable["key"] for variable in json.loads(listed[listed.index("[") :])]
    return [(run.returncode, output) for run, output in zip(runs, outputs, strict=True)], tenants, keys
