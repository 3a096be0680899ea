"""The main job: one tenant's Redshift tables land in a GCS bucket through Airflow, on the local stack.

``make demo`` runs this. It starts the local stack (PostgreSQL 16 behind the Redshift handshake shim,
fake-gcs-server) and a throwaway AIRFLOW_HOME, loads the sample dataset, writes the
``rs2gcs_tenants`` Variable with one demo tenant, runs that tenant's sync DAG with
``airflow dags test``, then prints what landed per table and checks row counts against the source by
reading every data object back. Exit 0 on success, 1 with a clear message on failure; everything it
started is stopped either way.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from dataclasses import dataclass

import pyarrow.parquet as pq

from airflow_rs2gcs.engine.paths import MANIFEST_NAME
from rs2gcs_devstack.airflow_home import AirflowCommandError, AirflowHome
from rs2gcs_devstack.sample_data import SAMPLE_TABLES, SCHEMA_SQL, grant_sql
from rs2gcs_devstack.stack import LocalStack

TENANT_ID = "demo"
BUCKET = "demo-exports"
PREFIX = "redshift"
LOGICAL_DATE = "2026-11-23T00:00:00+00:00"


def demo_tenants(redshift_conn_id: str, gcp_conn_id: str) -> dict:
    """The ``rs2gcs_tenants`` Variable of the demo: one daily tenant with three tables and a query."""
    return {
        TENANT_ID: {
            "source": "redshift_to_gcs",
            "status": "configured",
            "redshift_conn_id": redshift_conn_id,
            "gcp_conn_id": gcp_conn_id,
            "bucket": BUCKET,
            "prefix": PREFIX,
            "syncFrequency": "daily",
            "timezone": "UTC",
            "format": "parquet",
            "tables": [{"name": t.name, **({"query": t.query} if t.query else {})} for t in SAMPLE_TABLES],
        }
    }


@dataclass
class Landed:
    """What one table's export put in the bucket, and how it compares with the source."""

    table: str
    objects: int
    rows_in_manifest: int
    rows_read_back: int
    bytes: int
    source_rows: int

    @property
    def ok(self) -> bool:
        return self.rows_in_manifest == self.rows_read_back == self.source_rows


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def _source_count(stack: LocalStack, count_sql: str) -> int:
    return int(stack.postgres.psql(count_sql, database=stack.postgres.database).strip())


def inspect_table(gcs_hook, stack: LocalStack, table: str, count_sql: str) -> Landed:
    """Read the table's manifest and every object it lists back from the bucket."""
    root = f"{PREFIX}/{TENANT_ID}/{table}/"
    manifests = [n for n in gcs_hook.list(BUCKET, prefix=root) if n.endswith("/" + MANIFEST_NAME)]
    if len(manifests) != 1:
        raise RuntimeError(
            f"table {table}: expected one manifest under gs://{BUCKET}/{root}, found {manifests}"
        )
    manifest = json.loads(gcs_hook.download(BUCKET, manifests[0]))
    read_back = sum(
        pq.read_metadata(io.BytesIO(gcs_hook.download(BUCKET, obj["name"]))).num_rows
        for obj in manifest["objects"]
    )
    return Landed(
        table=table,
        objects=len(manifest["objects"]),
        rows_in_manifest=manifest["rows"],
        rows_read_back=read_back,
        bytes=manifest["bytes"],
        source_rows=_source_count(stack, count_sql),
    )


def print_report(landed: list[Landed]) -> None:
    """A table of what landed, per table, and the verdict of the row-count check."""
    header = f"{'table':<20} {'objects':>7} {'rows':>9} {'bytes':>11} {'source rows':>11}  check"
    print(header)
    print("-" * len(header))
    for item in landed:
        verdict = "ok" if item.ok else "MISMATCH"
        print(
            f"{item.table:<20} {item.objects:>7} {item.rows_read_back:>9} {item.bytes:>11} "
            f"{item.source_rows:>11}  {verdict}"
        )


def run_demo() -> list[Landed]:
    """Start everything, sync the demo tenant through Airflow, and return what landed."""
    _step("starting the local stack (PostgreSQL 16 + Redshift shim, fake-gcs-server)")
    with LocalStack() as stack:
        env = stack.airflow_env()
        _step("loading the sample dataset")
        stack.postgres.psql(SCHEMA_SQL + grant_sql(stack.postgres.user), database=stack.postgres.database)
        stack.gcs.create_bucket(BUCKET)
        with AirflowHome(env) as home:
            _step(f"creating a throwaway Airflow metadata DB in {home.path}")
            home.migrate()
            _step("writing the rs2gcs_tenants Variable")
            home.set_variable("rs2gcs_tenants", demo_tenants("rs2gcs_redshift", "rs2gcs_gcs"))
            _step(f"running rs2gcs_sync__{TENANT_ID} through Airflow (airflow dags test)")
            started = time.monotonic()
            home.run("dags", "test", f"rs2gcs_sync__{TENANT_ID}", LOGICAL_DATE, timeout=1200)
            _step(f"sync finished in {time.monotonic() - started:.1f} s; checking gs://{BUCKET}/{PREFIX}/")
            # Read back from this process: it needs the same connections, emulator and Airflow home.
            os.environ.update({**env, "AIRFLOW_HOME": str(home.path)})
            from airflow.providers.google.cloud.hooks.gcs import GCSHook

            gcs_hook = GCSHook(gcp_conn_id="rs2gcs_gcs")
            return [inspect_table(gcs_hook, stack, t.name, t.count_sql) for t in SAMPLE_TABLES]


def main() -> int:
    """Run the demo; 0 when every table's rows match the source."""
    try:
        landed = run_demo()
    except AirflowCommandError as exc:
        print(f"demo failed: an Airflow command failed.\n{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo interrupted; everything it started has been stopped", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print_report(landed)
    if not all(item.ok for item in landed):
        print("demo failed: row counts differ from the source (see MISMATCH above)", file=sys.stderr)
        return 1
    print(f"demo ok: {len(landed)} tables, {sum(i.rows_read_back for i in landed)} rows, row counts match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
