"""The one-shot set-up that makes ``docker compose up`` run the demo (the ``rs2gcs-demo`` service).

In the compose stack the stand-ins are separate containers: ``redshift-db`` (PostgreSQL 16) behind
``redshift`` (the handshake shim) and ``fake-gcs``. This loads the sample dataset into ``redshift-db``,
creates the demo bucket in the emulator, creates the Redshift connection's pool and writes the
``rs2gcs_tenants`` Variable with the demo tenant. The dag-processor then builds ``rs2gcs_sync__demo``
(unpaused at creation) and the scheduler runs its latest daily interval on the Celery workers; watch
it in the UI. Safe to run again: the schema SQL recreates the tables, the bucket may exist.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

from airflow_rs2gcs.factory import redshift_pool
from rs2gcs_devstack.demo import BUCKET, TENANT_ID, demo_tenants
from rs2gcs_devstack.sample_data import SCHEMA_SQL, grant_sql

REDSHIFT_CONN_ID = "rs2gcs_redshift"
GCP_CONN_ID = "rs2gcs_gcs"
POOL_SLOTS = 4


def load_sample_data(dsn: str, role: str) -> None:
    """Create and fill the sample tables straight in PostgreSQL (psycopg2 runs the multi-statement SQL)."""
    import psycopg2

    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(SCHEMA_SQL + grant_sql(role))


def create_bucket(bucket: str) -> None:
    """Create the demo bucket through the real GCSHook (the emulator answers 409 if it exists)."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from google.api_core.exceptions import Conflict

    with contextlib.suppress(Conflict):
        GCSHook(gcp_conn_id=GCP_CONN_ID).create_bucket(bucket_name=bucket, project_id="rs2gcs-local")


def airflow(*args: str) -> None:
    """Run this interpreter's ``airflow`` CLI (the container's, which reaches the metadata DB)."""
    subprocess.run([sys.executable, "-m", "airflow", *args], check=True)


def main() -> int:
    """Set up the demo tenant; the scheduler does the rest."""
    dsn = os.environ["RS2GCS_DEMO_SOURCE_DSN"]
    role = os.environ.get("RS2GCS_DEMO_SOURCE_ROLE", "rs2gcs")
    print("==> loading the sample dataset into redshift-db", flush=True)
    load_sample_data(dsn, role)
    print(f"==> creating gs://{BUCKET}", flush=True)
    create_bucket(BUCKET)
    pool = redshift_pool(REDSHIFT_CONN_ID)
    airflow("pools", "set", pool, str(POOL_SLOTS), f"rs2gcs table syncs on {REDSHIFT_CONN_ID}")
    airflow("variables", "set", "rs2gcs_tenants", json.dumps(demo_tenants(REDSHIFT_CONN_ID, GCP_CONN_ID)))
    print(
        f"==> demo ready: rs2gcs_sync__{TENANT_ID} appears at the next parse and runs its latest interval; "
        "open http://localhost:8080 (admin / admin)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
