"""End to end under a real scheduler: api-server + scheduler + dag-processor, LocalExecutor, REST API.

What ``airflow dags test`` cannot show: the dag-processor turning the ``rs2gcs_tenants`` Variable
(written through the REST API) into sync DAGs, a run triggered the way the UI's Trigger button does
it, a cron tenant getting runs by itself (never unpaused by hand), and the per-connection pool
bounding how many tables are read from one Redshift connection at a time, measured on the database
side in ``pg_stat_activity``. One Airflow start serves the whole module.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import time
from collections.abc import Iterator

import psycopg2
import pyarrow.parquet as pq
import pytest
from rs2gcs_devstack.demo import PREFIX, TENANT_ID, demo_tenants
from rs2gcs_devstack.sample_data import SAMPLE_TABLES, SCHEMA_SQL, grant_sql
from rs2gcs_devstack.services import AirflowServices
from rs2gcs_devstack.stack import DEFAULT_GCP_CONN_ID, DEFAULT_REDSHIFT_CONN_ID

from airflow_rs2gcs.engine.paths import MANIFEST_NAME, interval_partition, table_root
from airflow_rs2gcs.factory import redshift_pool, sync_dag_id

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

VARIABLE = "rs2gcs_tenants"
PARALLELISM = 8  # LocalExecutor slots: more than the pool below, so only the pool can hold tasks back
POOL_SLOTS = 3
POOL_TABLES = 50
POOL_TABLE_ROWS = 20_000
POOL_ROLE = "rs2gcs_pool"
POOL_CONN_ID = "rs2gcs_pool_conn"
SAMPLE_INTERVAL_S = 0.1


@pytest.fixture(scope="module")
def airflow(stack) -> Iterator[AirflowServices]:
    """The real services for the whole module, on the session's stack."""
    with AirflowServices(stack, parallelism=PARALLELISM) as services:
        yield services


@pytest.fixture
def gcs(stack_env):
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    return GCSHook(gcp_conn_id=DEFAULT_GCP_CONN_ID)


def add_tenants(airflow: AirflowServices, tenants: dict) -> None:
    """Merge ``tenants`` into the ``rs2gcs_tenants`` Variable through the REST API."""
    current = {}
    if airflow.api.exists(f"variables/{VARIABLE}"):
        current = json.loads(airflow.api.get(f"variables/{VARIABLE}")["value"])
    airflow.set_variable(VARIABLE, {**current, **tenants})


def tenant_entry(bucket: str, frequency: str, tables: list[dict], conn_id: str) -> dict:
    return {
        "source": "redshift_to_gcs",
        "status": "configured",
        "redshift_conn_id": conn_id,
        "gcp_conn_id": DEFAULT_GCP_CONN_ID,
        "bucket": bucket,
        "prefix": PREFIX,
        "syncFrequency": frequency,
        "timezone": "UTC",
        "format": "parquet",
        "tables": tables,
    }


def run_partition(run: dict) -> str:
    start, end = (dt.datetime.fromisoformat(run[k]) for k in ("data_interval_start", "data_interval_end"))
    return interval_partition(start, end)


def check_landed(gcs, bucket: str, folder: str, source_rows: int) -> dict:
    """The folder's manifest: rows equal the source, every listed object exists and is all there is."""
    manifest = json.loads(gcs.download(bucket, f"{folder}/{MANIFEST_NAME}"))
    listed = {o["name"] for o in manifest["objects"]}
    assert manifest["rows"] == source_rows, folder
    assert set(gcs.list(bucket, prefix=f"{folder}/")) == listed | {f"{folder}/{MANIFEST_NAME}"}
    read_back = sum(pq.read_metadata(io.BytesIO(gcs.download(bucket, name))).num_rows for name in listed)
    assert read_back == source_rows, folder
    return manifest


def count(stack, sql: str) -> int:
    return int(stack.postgres.psql(sql, database=stack.postgres.database).strip())


# --- a. the Variable -> a parsed sync DAG -> a run triggered like the UI's button -> GCS ------------
def test_triggered_sync_lands_every_table(stack, airflow, gcs):
    tenant_id, bucket = "sched_demo", "sched-demo-exports"
    entry = {**demo_tenants(DEFAULT_REDSHIFT_CONN_ID, DEFAULT_GCP_CONN_ID)[TENANT_ID], "bucket": bucket}
    stack.postgres.psql(SCHEMA_SQL + grant_sql(stack.postgres.user), database=stack.postgres.database)
    stack.gcs.create_bucket(bucket)
    airflow.create_pool(redshift_pool(DEFAULT_REDSHIFT_CONN_ID), 4, "rs2gcs: the local stack's Redshift")
    add_tenants(airflow, {tenant_id: entry})

    dag_id = sync_dag_id(tenant_id)
    details = airflow.wait_for_dag(dag_id)
    assert set(details["params"]) == {"source", "full_refresh", "tables"}
    form = {"source": "redshift_to_gcs", "full_refresh": False, "tables": None}  # the widget's payload
    assert airflow.trigger_form_conf(dag_id) == form
    run = airflow.trigger(dag_id)  # the form as it opens: every table, no full refresh
    assert run["run_type"] == "manual"
    assert run["conf"] == form
    run = airflow.wait_for_run(dag_id, run["dag_run_id"], timeout=420)

    partition = run_partition(run)
    for table in SAMPLE_TABLES:
        folder = f"{table_root(PREFIX, tenant_id, table.name)}/{partition}"
        manifest = check_landed(gcs, bucket, folder, count(stack, table.count_sql))
        assert manifest["rows"] > 0
    mapped = export_tasks(airflow.task_instances(dag_id, run["dag_run_id"]))
    assert sorted(tables_named(mapped)) == sorted(t.name for t in SAMPLE_TABLES)
    assert {ti["pool"] for ti in mapped} == {redshift_pool(DEFAULT_REDSHIFT_CONN_ID)}
    # customers (5,000 rows) and products (500) share a task holding 2 slots of the pool.
    small = [ti for ti in mapped if ti["task_id"] == "sync_small_tables"]
    assert small and small[0]["rendered_map_index"].startswith("small: public.customers, public.products")
    assert {ti["pool_slots"] for ti in small} == {2}


# --- b. a cron tenant runs by itself: never unpaused by hand --------------------------------------
def test_cron_tenant_gets_a_scheduled_run_without_unpausing(stack, airflow, gcs):
    tenant_id, bucket = "sched_cron", "sched-cron-exports"
    stack.postgres.psql(
        "CREATE TABLE IF NOT EXISTS public.sched_cron_probe AS "
        "SELECT g AS id, 'row ' || g AS label FROM generate_series(1, 777) AS g;"
        + grant_sql(stack.postgres.user),
        database=stack.postgres.database,
    )
    stack.gcs.create_bucket(bucket)
    airflow.create_pool(redshift_pool(DEFAULT_REDSHIFT_CONN_ID), 4, "rs2gcs: the local stack's Redshift")
    tables = [{"name": "public.sched_cron_probe"}]
    add_tenants(airflow, {tenant_id: tenant_entry(bucket, "* * * * *", tables, DEFAULT_REDSHIFT_CONN_ID)})

    dag_id = sync_dag_id(tenant_id)
    try:
        details = airflow.wait_for_dag(dag_id)
        # New DAGs start paused in this home ([core] dags_are_paused_at_creation = True); ready tenants not.
        assert airflow.home.env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "True"
        assert details["is_paused"] is False
        assert details["timetable_summary"] == "* * * * *"
        run = wait_for_scheduled_run(airflow, dag_id, timeout=180)
        run = airflow.wait_for_run(dag_id, run["dag_run_id"], timeout=300)
    finally:
        airflow.set_paused(dag_id, True)  # a run a minute would compete with the pool test

    start, end = (dt.datetime.fromisoformat(run[k]) for k in ("data_interval_start", "data_interval_end"))
    assert end - start == dt.timedelta(minutes=1)
    folder = f"{table_root(PREFIX, tenant_id, 'public.sched_cron_probe')}/{run_partition(run)}"
    check_landed(gcs, bucket, folder, 777)


def wait_for_scheduled_run(airflow: AirflowServices, dag_id: str, *, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = airflow.runs(dag_id, run_type=["scheduled"])
        if runs:
            return runs[0]
        time.sleep(2)
    raise AssertionError(
        f"no scheduled run of {dag_id} within {timeout:.0f}s; scheduler log:\n"
        f"{airflow.children['scheduler'].log_tail(60)}"
    )


# --- c. 50 tables, one connection, a pool of 3: never more than 3 at once in the database --------
class ActivitySampler(threading.Thread):
    """Samples ``pg_stat_activity`` every ~100 ms: backends of one role, and those inside our cursor."""

    QUERY = (
        "SELECT count(*), count(*) FILTER (WHERE state IN ('active', 'idle in transaction') "
        "AND query ~* '^\\s*(declare|fetch)') FROM pg_stat_activity WHERE usename = %s"
    )

    def __init__(self, stack, role: str) -> None:
        super().__init__(daemon=True)
        self.role = role
        self.dsn = {
            "host": str(stack.postgres.socket_dir),
            "port": stack.postgres.port,
            "user": "postgres",
            "dbname": "postgres",
        }
        self.max_backends = 0
        self.max_exporting = 0
        self.samples = 0
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            # Not ``with connect()``: psycopg2 then opens a transaction, and PostgreSQL serves
            # pg_stat_activity from one snapshot per transaction.
            db = psycopg2.connect(**self.dsn)
            db.autocommit = True
            try:
                with db.cursor() as cursor:
                    while not self._halt.is_set():
                        cursor.execute(self.QUERY, (self.role,))
                        backends, exporting = cursor.fetchone()
                        self.max_backends = max(self.max_backends, backends)
                        self.max_exporting = max(self.max_exporting, exporting)
                        self.samples += 1
                        self._halt.wait(SAMPLE_INTERVAL_S)
            finally:
                db.close()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
        if self.error is not None:
            raise self.error


def create_pool_tables(stack) -> list[str]:
    """50 small tables and a login role of their own, so its backends are ours alone."""
    names = [f"pooltest.t{i:02d}" for i in range(1, POOL_TABLES + 1)]
    creates = "\n".join(
        f"CREATE TABLE {name} AS SELECT g AS id, (g * 7919 % 100000) / 100.0 AS amount,"
        f" md5(g::text) AS label, timestamptz '2026-01-01' + g * interval '1 minute' AS created_at"
        f" FROM generate_series(1, {POOL_TABLE_ROWS}) AS g;"
        for name in names
    )
    pg = stack.postgres
    stack.postgres.psql(
        f"DROP SCHEMA IF EXISTS pooltest CASCADE; CREATE SCHEMA pooltest;\n{creates}\n"
        "SET password_encryption = 'md5';\n"
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{POOL_ROLE}') THEN "
        f"CREATE ROLE {POOL_ROLE} LOGIN PASSWORD '{pg.password}'; "
        f"END IF; END $$;\n"
        f"GRANT USAGE ON SCHEMA pooltest TO {POOL_ROLE}; GRANT SELECT ON ALL TABLES IN SCHEMA pooltest TO "
        f"{POOL_ROLE};",
        database=pg.database,
    )
    return names


def export_tasks(tis: list[dict]) -> list[dict]:
    """The mapped export task instances: one per large table, one per group of small tables.

    An export task mapped over nothing is one skipped instance with map index -1: not an export.
    """
    return [ti for ti in tis if ti["task_id"] in ("sync_table", "sync_small_tables") and ti["map_index"] >= 0]


def tables_named(tis: list[dict]) -> list[str]:
    """The tables the export tasks' map-index names list (``orders``; ``small: a, b, c``)."""
    labels = [ti["rendered_map_index"].removeprefix("small: ") for ti in tis]
    return [name for label in labels for name in label.split(", ")]


def max_running_tasks(tis: list[dict]) -> int:
    """The most task instances whose [start, end] overlapped, from Airflow's own records."""
    edges = sorted(
        [(dt.datetime.fromisoformat(ti["start_date"]), 1) for ti in tis]
        + [(dt.datetime.fromisoformat(ti["end_date"]), -1) for ti in tis]
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_pool_bounds_concurrent_exports_on_one_connection(stack, airflow, gcs, record_property):
    tenant_id, bucket = "sched_pool", "sched-pool-exports"
    tables = create_pool_tables(stack)
    stack.gcs.create_bucket(bucket)
    connection = {**stack.redshift_connection(POOL_CONN_ID), "login": POOL_ROLE}
    airflow.create_connection(connection)
    pool = redshift_pool(POOL_CONN_ID)
    airflow.create_pool(pool, POOL_SLOTS, "rs2gcs: at most 3 tables at once on the pool test connection")
    entry = tenant_entry(bucket, "manual", [{"name": name} for name in tables], POOL_CONN_ID)
    add_tenants(airflow, {tenant_id: entry})
    dag_id = sync_dag_id(tenant_id)
    airflow.wait_for_dag(dag_id)

    sampler = ActivitySampler(stack, POOL_ROLE)
    sampler.start()
    started = time.monotonic()
    try:
        run = airflow.trigger(dag_id)
        run = airflow.wait_for_run(dag_id, run["dag_run_id"], timeout=600)
    finally:
        elapsed = time.monotonic() - started
        sampler.stop()
    mapped = export_tasks(airflow.task_instances(dag_id, run["dag_run_id"]))
    figures = {
        "tables": len(tables),
        "pool_slots": POOL_SLOTS,
        "parallelism": PARALLELISM,
        "max_backends": sampler.max_backends,
        "max_exporting": sampler.max_exporting,
        "max_running_tasks": max_running_tasks(mapped),
        "mean_task_seconds": round(sum(ti["duration"] or 0 for ti in mapped) / max(len(mapped), 1), 1),
        "samples": sampler.samples,
        "run_seconds": round(elapsed, 1),
    }
    for key, value in figures.items():
        record_property(key, value)
    print(f"\npool test figures: {figures}")

    assert sampler.samples > 10
    # Backends of the pool role = table exports connected at once (each task holds one connection
    # from its first query to its manifest); those inside DECLARE/FETCH are a subset.
    assert 1 < sampler.max_backends <= POOL_SLOTS, str(figures)
    assert sampler.max_exporting <= sampler.max_backends, str(figures)
    # The 50 small tables share sync_small_tables tasks (at most 25 tables each) of 2 pool slots each.
    # (A name lists the tables that fit in Airflow's 250 characters and counts the rest: "... +8".)
    assert all(ti["rendered_map_index"].startswith("small: pooltest.t") for ti in mapped)
    assert {ti["pool"] for ti in mapped} == {pool}
    assert 2 <= len(mapped) < POOL_TABLES and {ti["task_id"] for ti in mapped} == {"sync_small_tables"}
    assert max_running_tasks(mapped) * 2 <= POOL_SLOTS  # one group (2 slots) at a time in 3 slots
    partition = run_partition(run)
    manifests = [n for n in gcs.list(bucket, prefix=f"{PREFIX}/{tenant_id}/") if n.endswith(MANIFEST_NAME)]
    assert len(manifests) == POOL_TABLES
    for name in tables:
        check_landed(gcs, bucket, f"{table_root(PREFIX, tenant_id, name)}/{partition}", POOL_TABLE_ROWS)
