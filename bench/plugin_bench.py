"""Widget API latency: the tenant list with 1000 tenants and a 100-relation catalog page, on the local stack.

Starts the local stack (PostgreSQL 16 behind the Redshift shim, fake-gcs-server) and the real Airflow
api-server, scheduler and dag-processor (with an empty DAGs folder: the measured requests read the
Variable and the metadata DB, and 1000 parsed sync DAGs would only slow the start). Then:

- writes ``--tenants`` configured tenants (three tables and a webhook each) into ``rs2gcs_tenants``;
- records ``--runs-per-tenant`` finished sync runs with their ``summary`` return values for every
  ``--run-every``-th tenant, straight into the metadata DB with Airflow's models (what a real sync
  leaves behind for the list to read);
- creates ``--relations`` readable tables in a schema of their own;
- times ``GET tenants`` (first page, a middle page, a search) and ``GET catalog`` (first page and the
  next one, 100 relations each) over HTTP as the page calls them, ``--repeat`` times after warm-up,
  and prints the medians against the 300 ms target.

Not a test: it prints numbers. ``make bench-plugin`` runs it with the defaults.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rs2gcs_devstack.services import AirflowServices
from rs2gcs_devstack.stack import DEFAULT_GCP_CONN_ID, DEFAULT_REDSHIFT_CONN_ID, LocalStack

TARGET_MS = 300.0
API = "/rs2gcs/api/v1"

# Run in a child with the services' environment, so Airflow's models talk to their metadata DB.
RECORD_RUNS = """
import datetime as dt, json, sys
from sqlalchemy import insert
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from airflow.utils.types import DagRunType
tenants, per_tenant = json.loads(sys.argv[1]), int(sys.argv[2])
now = dt.datetime.now(dt.timezone.utc)
with create_session() as session:
    for n, tenant in enumerate(tenants):
        for k in range(per_tenant):
            start = now - dt.timedelta(hours=k + 1, minutes=n % 60)
            run = DagRun(dag_id=f"rs2gcs_sync__{tenant}", run_id=f"scheduled__bench_{k}",
                         run_type=DagRunType.SCHEDULED, state="success", run_after=start,
                         start_date=start, conf={})
            run.end_date = start + dt.timedelta(seconds=20 + k)
            session.add(run)
            session.flush()
            session.execute(insert(TaskInstance.__table__).values(
                task_id="summary", dag_id=run.dag_id, run_id=run.run_id, map_index=-1, state="success",
                try_number=1, pool="default_pool", start_date=start, end_date=run.end_date))
            session.add(XComModel(dag_run_id=run.id, task_id="summary", map_index=-1, key="return_value",
                                  dag_id=run.dag_id, run_id=run.run_id, timestamp=run.end_date,
                                  value={"tables": 3, "failed": [], "rows": 1000 * (k + 1),
                                         "bytes": 50000, "objects": 3}))
"""


def tenants(count: int) -> dict[str, Any]:
    """``count`` configured tenants as a deployment writes them."""
    return {
        f"tenant{i:04d}": {
            "status": "configured",
            "source": "redshift_to_gcs",
            "redshift_conn_id": DEFAULT_REDSHIFT_CONN_ID,
            "gcp_conn_id": DEFAULT_GCP_CONN_ID,
            "bucket": f"bucket-{i:04d}",
            "prefix": "redshift",
            "syncFrequency": ("hourly", "daily", "5min", "30 2 * * *")[i % 4],
            "timezone": "Europe/Berlin",
            "format": "parquet",
            "tables": [
                {"name": "public.orders", "mode": "incremental", "cursor_column": "updated_at"},
                {"name": "public.customers"},
                {"name": "daily_revenue", "query": "select 1 as x"},
            ],
            "webhooks": [{"id": "wh_1", "url": "https://hooks.example.com/rs2gcs", "secret": f"secret-{i}"}],
        }
        for i in range(count)
    }


def catalog_sql(relations: int, role: str) -> str:
    return f"""
    DROP SCHEMA IF EXISTS benchcat CASCADE; CREATE SCHEMA benchcat;
    DO $$ BEGIN FOR i IN 1..{relations} LOOP
      EXECUTE format('CREATE TABLE benchcat.t%s (id int, updated_at timestamp)', lpad(i::text, 4, '0'));
    END LOOP; END $$;
    GRANT USAGE ON SCHEMA benchcat TO "{role}"; GRANT SELECT ON ALL TABLES IN SCHEMA benchcat TO "{role}";
    """


def median_ms(client: httpx.Client, path: str, params: dict[str, Any], repeat: int) -> float:
    """Median wall time of ``repeat`` GETs (after two warm-up calls), in milliseconds."""
    for _ in range(2):
        client.get(path, params=params).raise_for_status()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--run-every", type=int, default=3, help="every n-th tenant has sync runs")
    parser.add_argument("--runs-per-tenant", type=int, default=5)
    parser.add_argument("--relations", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    with LocalStack() as stack, tempfile.TemporaryDirectory() as empty_dags:
        stack.postgres.psql(
            catalog_sql(args.relations, stack.postgres.user), database=stack.postgres.database
        )
        with AirflowServices(stack, dags_folder=Path(empty_dags)) as airflow:
            assert airflow.home is not None
            entries = tenants(args.tenants)
            airflow.set_variable("rs2gcs_tenants", entries)
            with_runs = sorted(entries)[:: args.run_every]
            subprocess.run(
                [sys.executable, "-c", RECORD_RUNS, json.dumps(with_runs), str(args.runs_per_tenant)],
                env=airflow.home.env,
                check=True,
            )
            token = airflow.api.token() if airflow.api else ""
            client = httpx.Client(
                base_url=airflow.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
            )
            first = client.get(f"{API}/tenants/tenant0000/catalog", params={"q": "benchcat"}).json()
            cases = [
                ("GET tenants (page 1 of 50)", f"{API}/tenants", {"limit": 50}),
                ("GET tenants (offset 500)", f"{API}/tenants", {"offset": 500, "limit": 50}),
                ("GET tenants?q=tenant09", f"{API}/tenants", {"q": "tenant09", "limit": 50}),
                ("GET catalog (100, first page)", f"{API}/tenants/tenant0000/catalog", {"q": "benchcat"}),
                (
                    "GET catalog (100, next page)",
                    f"{API}/tenants/tenant0000/catalog",
                    {"q": "benchcat", "page_token": first["next_page_token"]},
                ),
            ]
            when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            print(
                f"plugin bench {when}: {args.tenants} tenants, {len(with_runs)} with "
                f"{args.runs_per_tenant} sync runs each, {args.relations} catalog relations, "
                f"median of {args.repeat}"
            )
            for label, path, params in cases:
                ms = median_ms(client, path, params, args.repeat)
                verdict = "ok" if ms < TARGET_MS else "OVER"
                print(f"  {label:<32} {ms:7.1f} ms   (target < {TARGET_MS:.0f} ms: {verdict})")


if __name__ == "__main__":
    main()
