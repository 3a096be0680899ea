"""docker-compose.yaml's CeleryExecutor stack, really run on this machine (issue 15).

On loopback: the metadata DB on PostgreSQL, Debian's ``redis-server`` as the broker, the api-server,
scheduler, dag-processor and two ``airflow celery worker`` processes (``worker-a``, ``worker-b``:
task instances record which one ran them), all with the settings of ``airflow.env``, the file
docker-compose.yaml reads (:mod:`rs2gcs_devstack.celery_stack`). It shows:

a. several tenants' sync DAGs succeed with table tasks run on both workers, exports exact value by
   value, and the per-connection pool (2 slots) bounds concurrent exports across both workers (4
   task slots between them), from Airflow's own start/end times;
b. a worker SIGKILLed (its whole process tree) while a table streams out of "Redshift", inside a task
   that exports a group of small tables one at a time: the scheduler finds the task without
   heartbeat, retries it on the other worker, the retry keeps the table the killed try had already
   published (its manifest untouched) and exports the other again, and the interval ends exact (no
   duplicate row, no object besides the manifest's);
c. every process the module started is gone once the stack is stopped.

One stack for the module. Without redis-server it is skipped (make test installs it), except in CI
(``CI=true``), where that is a failure.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rs2gcs_devstack.broker import LocalRedis, redis_server_binary
from rs2gcs_devstack.celery_stack import CeleryServices, descendants
from rs2gcs_devstack.processes import pid_alive
from rs2gcs_devstack.stack import DEFAULT_GCP_CONN_ID

from airflow_rs2gcs.engine.paths import MANIFEST_NAME, table_root
from airflow_rs2gcs.factory import (
    SMALL_TABLES_TASK_ID,
    SYNC_RETRY_DELAY,
    TABLE_TASK_ID,
    redshift_pool,
    sync_dag_id,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

WORKERS = ("worker-a", "worker-b")
CONCURRENCY = 2  # per worker: 4 task slots in all, twice the pool below
POOL_SLOTS = 2
PREFIX = "celery"
SCHEMA = "celerytest"
COLUMNS = ("id", "amount", "created_at", "note", "flag")
TENANTS = ("cel_acme", "cel_globex", "cel_initech")
TABLES_PER_TENANT = 2
TABLE_ROWS = 20_000
SHARED_CONN_ID, SHARED_ROLE = "rs2gcs_celery", "rs2gcs_celery"
KILL_TENANT, KILL_CONN_ID, KILL_ROLE = "cel_killed", "rs2gcs_celery_kill", "rs2gcs_celery_kill"
KILL_TABLE, KILL_ROWS = f"{SCHEMA}.big", 600_000
KILL_DONE = f"{SCHEMA}.done_first"  # the group's first table: published before the kill, kept by the retry
# A killed worker's task is found by the scheduler once its heartbeat is this old (300 s by default;
# the task's supervisor heartbeats every 5 s or more often, so 20 s leaves a healthy task room).
SETTINGS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
}


def redis_or_skip() -> None:
    """Debian's redis-server, which ``make test`` installs; if missing, skip here but fail in CI."""
    if redis_server_binary() is not None:
        return
    message = "redis-server is not installed (make test installs Debian's redis-server with apt-get)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; in CI the Celery test must run", pytrace=False)
    pytest.skip(message)


class ProcessWatch(threading.Thread):
    """Records every process that appears below this one, except below those that were already there
    (the session's PostgreSQL, shim and fake-gcs-server): what this module starts, their children
    included, sampled every 0.2 s with the start time that tells a reused pid apart."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.before = set(descendants(os.getpid()))
        self.seen: dict[int, tuple[int, str]] = {}
        self._halt = threading.Event()

    def sample(self) -> None:
        inherited = self.before.union(*(descendants(pid) for pid in self.before))
        for pid in set(descendants(os.getpid())) - inherited:
            if pid not in self.seen and (identity := process_identity(pid)) is not None:
                self.seen[pid] = identity

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(0.2)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def alive(self) -> list[str]:
        """The recorded processes that still exist (same pid and start time, not a zombie)."""
        return [
            f"{pid} {identity[1]}"
            for pid, identity in self.seen.items()
            if pid_alive(pid) and process_identity(pid) == identity
        ]


def process_identity(pid: int) -> tuple[int, str] | None:
    """(start time in clock ticks, command line) of ``pid``, or None if it is gone."""
    try:
        start = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError, ValueError):
        return None
    return start, cmdline.strip()[:200]


@pytest.fixture(scope="module")
def redis_installed() -> None:
    """Checked before the session's stack starts, so a skip costs nothing."""
    redis_or_skip()


@pytest.fixture(scope="module")
def watch(redis_installed, stack) -> Iterator[ProcessWatch]:
    """Started once the session's stack runs: its processes are not this module's."""
    watcher = ProcessWatch()
    watcher.start()
    yield watcher
    watcher.stop()


@pytest.fixture(scope="module")
def celery(watch, stack) -> Iterator[CeleryServices]:
    """Redis and the Celery stack for the whole module (the last test stops them itself)."""
    with (
        LocalRedis() as redis,
        CeleryServices(
            stack, redis, workers=WORKERS, concurrency=CONCURRENCY, extra_env=SETTINGS
        ) as services,
    ):
        yield services


@pytest.fixture
def gcs(stack_env):
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    return GCSHook(gcp_conn_id=DEFAULT_GCP_CONN_ID)


# --- the source: tables in "Redshift", read back value by value ----------------------------------------
def table_sql(name: str, rows: int) -> str:
    """A table whose values exercise the encoders: NULLs, decimals, instants, commas, quotes, Unicode."""
    return f"""
CREATE TABLE {name} (id bigint, amount numeric(12, 2), created_at timestamptz, note text, flag boolean);
INSERT INTO {name}
SELECT g,
       CASE WHEN g % 13 = 0 THEN NULL ELSE round(((g::bigint * 7919) % 10000000) / 100.0, 2) END,
       timestamptz '2026-05-01 00:00:00+00' + g * interval '271 milliseconds',
       CASE WHEN g % 7 = 0 THEN NULL
            ELSE '{name} ' || g
                 || (ARRAY[', comma', ' "quoted"', E'\\nnewline', ' Ünïcödé 🚀', ''])[1 + g % 5]
       END,
       CASE WHEN g % 11 = 0 THEN NULL ELSE g % 2 = 0 END
FROM generate_series(1, {rows}) AS g;
"""


def tenant_tables(tenant_id: str) -> list[str]:
    return [f"{SCHEMA}.{tenant_id}_t{i}" for i in range(1, TABLES_PER_TENANT + 1)]


@pytest.fixture(scope="module")
def source(stack) -> None:
    """The tables, and two login roles of their own: the pool's connection, the killed export's."""
    pg = stack.postgres
    creates = "\n".join(table_sql(name, TABLE_ROWS) for t in TENANTS for name in tenant_tables(t))
    roles = "\n".join(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {role} LOGIN PASSWORD '{pg.password}'; END IF; END $$;\n"
        f"GRANT USAGE ON SCHEMA {SCHEMA} TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {role};"
        for role in (SHARED_ROLE, KILL_ROLE)
    )
    pg.psql(
        f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA};\n{creates}\n"
        f"{table_sql(KILL_TABLE, KILL_ROWS)}\n{table_sql(KILL_DONE, TABLE_ROWS)}\n"
        f"SET password_encryption = 'md5';\n{roles}",
        database=pg.database,
    )


def superuser_dsn(stack) -> dict[str, Any]:
    """PostgreSQL itself over its unix socket (not through the shim): the test's own view of the source."""
    return {"host": str(stack.postgres.socket_dir), "port": stack.postgres.port, "user": "postgres"}


def exported_table(stack, gcs, bucket: str, root: str) -> pa.Table:
    """The rows a table's one published export holds, checked against its manifest.

    ``root`` (the table's folder) must hold exactly one manifest and the objects it lists, nothing
    else: an object a killed try left behind, or a second export, fails here. Each listed object must
    have the listed MD5 and row count.
    """
    names = sorted(n for n in stack.gcs.list_objects(bucket) if n.startswith(f"{root}/"))
    manifests = [n for n in names if n.endswith(f"/{MANIFEST_NAME}")]
    assert len(manifests) == 1, f"{root}: manifests {manifests}"
    manifest = json.loads(gcs.download(bucket, manifests[0]))
    listed = [o["name"] for o in manifest["objects"]]
    assert names == sorted([*listed, manifests[0]]), f"{root}: objects besides the manifest's: {names}"
    blobs = gcs.get_conn().bucket(bucket)
    tables = []
    for entry in manifest["objects"]:
        blob = blobs.get_blob(entry["name"])
        assert blob is not None and blob.md5_hash == entry["md5"], entry["name"]
        table = pq.read_table(io.BytesIO(blob.download_as_bytes()))
        assert table.num_rows == entry["rows"], entry["name"]
        tables.append(table)
    table = pa.concat_tables(tables)
    assert table.num_rows == manifest["rows"]
    return table.sort_by("id")


def assert_exact(stack, name: str, exported: pa.Table, chunk: int = 50_000) -> None:
    """``exported`` holds the source table's rows, each once, value by value (compared chunk by chunk
    in id order: a missing, extra or duplicate row shifts the ids and fails)."""
    with psycopg2.connect(**superuser_dsn(stack), dbname=stack.postgres.database) as db:
        with db.cursor(name="source") as cursor:  # server side: the big table never sits in memory whole
            cursor.itersize = chunk
            cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM {name} ORDER BY id")
            offset = 0
            while rows := cursor.fetchmany(chunk):
                piece = exported.slice(offset, len(rows))
                got = list(zip(*(piece.column(c).to_pylist() for c in COLUMNS), strict=True))
                if got != rows:
                    first = next(
                        (i for i, pair in enumerate(zip(rows, got, strict=False)) if pair[0] != pair[1]),
                        min(len(rows), len(got)),
                    )
                    row = rows[first] if first < len(rows) else None
                    pytest.fail(
                        f"{name}: row {offset + first} differs: source {row!r}, "
                        f"export {got[first] if first < len(got) else None!r}"
                    )
                offset += len(rows)
        db.rollback()
    assert offset == exported.num_rows, f"{name}: {exported.num_rows - offset} rows more than the source"
    assert isinstance(exported.column("amount").type, pa.Decimal128Type)  # the decimals stayed decimals


# --- the tenants ---------------------------------------------------------------------------------------
def tenant_entry(tenant_id: str, conn_id: str, tables: list[str]) -> dict[str, Any]:
    return {
        "source": "redshift_to_gcs",
        "status": "configured",
        "redshift_conn_id": conn_id,
        "gcp_conn_id": DEFAULT_GCP_CONN_ID,
        "bucket": bucket_of(tenant_id),
        "prefix": PREFIX,
        "syncFrequency": "manual",
        "timezone": "UTC",
        "format": "parquet",
        "tables": [{"name": name} for name in tables],
        # One task per table, so the pool's bound shows as task instances across the workers (grouped
        # small tables hold several slots in one task: test_scheduler_e2e shows that under the pool).
        "group_small_tables": False,
    }


def bucket_of(tenant_id: str) -> str:
    return f"{tenant_id.replace('_', '-')}-exports"


@pytest.fixture(scope="module")
def tenants(stack, celery, source) -> None:
    """Every tenant of the module in the Variable, their connections, pools and buckets; DAGs parsed."""
    for conn_id, role in ((SHARED_CONN_ID, SHARED_ROLE), (KILL_CONN_ID, KILL_ROLE)):
        celery.create_connection({**stack.redshift_connection(conn_id), "login": role})
    celery.create_pool(
        redshift_pool(SHARED_CONN_ID), POOL_SLOTS, "rs2gcs: the Celery test's shared connection"
    )
    celery.create_pool(redshift_pool(KILL_CONN_ID), 1, "rs2gcs: the Celery test's killed export")
    entries = {t: tenant_entry(t, SHARED_CONN_ID, tenant_tables(t)) for t in TENANTS}
    # One group task of both tables (the big one hinted small), exporting one at a time in its 1 slot.
    entries[KILL_TENANT] = {
        **tenant_entry(KILL_TENANT, KILL_CONN_ID, []),
        "tables": [
            {"name": KILL_DONE, "expected_rows": TABLE_ROWS},
            {"name": KILL_TABLE, "expected_rows": 1},
        ],
        "group_small_tables": True,
        "small_table_slots": 1,
    }
    for tenant_id in entries:
        stack.gcs.create_bucket(bucket_of(tenant_id))
    celery.set_variable("rs2gcs_tenants", entries)
    for tenant_id in entries:
        celery.wait_for_dag(sync_dag_id(tenant_id))


def table_tasks(
    celery: CeleryServices, dag_id: str, run_id: str, task_id: str = TABLE_TASK_ID
) -> list[dict[str, Any]]:
    return [ti for ti in celery.task_instances(dag_id, run_id) if ti["task_id"] == task_id]


def manifest_generation(gcs, bucket: str, root: str) -> int | None:
    """The GCS generation of the table folder's manifest (``None`` while there is none)."""
    names = [n for n in gcs.list(bucket, prefix=f"{root}/") if n.endswith(f"/{MANIFEST_NAME}")]
    return gcs.get_conn().bucket(bucket).get_blob(names[0]).generation if names else None


def peak_overlap(tis: list[dict[str, Any]]) -> tuple[int, set[str]]:
    """The most task instances running at once (from Airflow's start/end dates), and the hostnames of
    the ones running at that peak."""
    edges = sorted(
        [(dt.datetime.fromisoformat(ti["end_date"]), -1, i) for i, ti in enumerate(tis)]
        + [(dt.datetime.fromisoformat(ti["start_date"]), 1, i) for i, ti in enumerate(tis)]
    )  # at equal times an end sorts before a start: a slot handed over is not an overlap
    running: set[int] = set()
    peak, hosts = 0, set()
    for _, step, index in edges:
        if step > 0:
            running.add(index)
        else:
            running.discard(index)
        if len(running) > peak:
            peak, hosts = len(running), {tis[i]["hostname"] for i in running}
    return peak, hosts


# --- a. several tenants, both workers, one pool across them, exact exports -----------------------------
def test_tenants_sync_on_both_workers_within_the_pool_and_exactly(stack, celery, tenants, gcs):
    started = time.monotonic()
    runs = {sync_dag_id(t): celery.trigger(sync_dag_id(t))["dag_run_id"] for t in TENANTS}
    for dag_id, run_id in runs.items():
        celery.wait_for_run(dag_id, run_id, timeout=300)
    elapsed = time.monotonic() - started

    everything = [ti for dag_id, run_id in runs.items() for ti in celery.task_instances(dag_id, run_id)]
    exports = [ti for dag_id, run_id in runs.items() for ti in table_tasks(celery, dag_id, run_id)]
    peak, peak_hosts = peak_overlap(exports)
    hosts = {ti["hostname"] for ti in exports}
    print(
        f"\nCelery figures: {len(exports)} table tasks in {elapsed:.1f}s; hosts of the table tasks "
        f"{sorted(hosts)}; peak {peak} running at once, on {sorted(peak_hosts)}"
    )
    assert {ti["state"] for ti in everything} == {"success"}
    assert len(exports) == len(TENANTS) * TABLES_PER_TENANT
    assert {ti["pool"] for ti in exports} == {redshift_pool(SHARED_CONN_ID)}
    assert {ti["hostname"] for ti in everything} <= set(WORKERS)
    assert hosts == set(WORKERS), "both workers ran table exports"
    # The workers have 4 slots between them; the pool lets 2 exports of the connection run, and 2 did.
    assert peak == POOL_SLOTS, f"peak {peak} of the pool's {POOL_SLOTS} slots"

    for tenant_id in TENANTS:
        for name in tenant_tables(tenant_id):
            exported = exported_table(stack, gcs, bucket_of(tenant_id), table_root(PREFIX, tenant_id, name))
            assert exported.num_rows == TABLE_ROWS
            assert_exact(stack, name, exported)


# --- b. a worker SIGKILLed mid-export: the task is retried on the other one, the interval exact -------
def fetching(stack, role: str) -> bool:
    """True while a backend of ``role`` is inside the export's cursor (DECLARE/FETCH) in PostgreSQL."""
    with psycopg2.connect(**superuser_dsn(stack), dbname="postgres") as db, db.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s "
            "AND state IN ('active', 'idle in transaction') AND query ~* '^\\s*(declare|fetch)'",
            (role,),
        )
        (count,) = cursor.fetchone()
    return count > 0


def wait_until(condition: Callable[[], Any], timeout: float, what: str, report: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:.0f}s: {what}\n{report()}")


def test_a_worker_killed_mid_export_is_retried_on_the_other_and_the_interval_is_exact(
    stack, celery, tenants, gcs
):
    dag_id = sync_dag_id(KILL_TENANT)
    run_id = celery.trigger(dag_id)["dag_run_id"]
    report = functools.partial(celery.run_report, dag_id, run_id)

    bucket, done_root = bucket_of(KILL_TENANT), table_root(PREFIX, KILL_TENANT, KILL_DONE)

    def running_export() -> dict[str, Any] | None:
        [ti] = table_tasks(celery, dag_id, run_id, SMALL_TABLES_TASK_ID) or [None]
        return ti if ti and ti["state"] == "running" and ti["hostname"] else None

    ti = wait_until(running_export, 180, "the group's export running on a worker", report)
    # One slot: the first table is published before the big one starts, whose cursor is then the open one.
    published = wait_until(
        lambda: manifest_generation(gcs, bucket, done_root), 120, "the first table published", report
    )
    wait_until(lambda: fetching(stack, KILL_ROLE), 120, "the big table's cursor open in PostgreSQL", report)
    time.sleep(1)  # well inside the stream: rows fetched, encoded, the cursor still open
    assert fetching(stack, KILL_ROLE), "the export ended before the kill: make KILL_TABLE bigger"
    killed, survivor = ti["hostname"], next(w for w in WORKERS if w != ti["hostname"])
    killed_at, killed_wall = time.monotonic(), dt.datetime.now(dt.UTC)
    pids = celery.kill_worker(killed)
    left = sorted(n for n in stack.gcs.list_objects(bucket))
    print(f"\nkilled {killed} ({len(pids)} processes) mid-export; objects then: {left}")

    run = celery.wait_for_run(dag_id, run_id, timeout=300)
    print(f"the run succeeded {time.monotonic() - killed_at:.1f}s after the kill")
    [retried] = table_tasks(celery, dag_id, run_id, SMALL_TABLES_TASK_ID)
    assert run["state"] == "success"
    assert (retried["try_number"], retried["hostname"]) == (2, survivor)
    tries = celery.api.get(
        f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{SMALL_TABLES_TASK_ID}/{retried['map_index']}/tries"
    )["task_instances"]
    first = next(t for t in tries if t["try_number"] == 1)
    assert first["hostname"] == killed and first["state"] != "success", first
    failed_at, retried_at = (
        dt.datetime.fromisoformat(t[k]) for t, k in ((first, "end_date"), (retried, "start_date"))
    )
    print(
        f"try 1 failed {(failed_at - killed_wall).total_seconds():.1f}s after the kill (heartbeat timeout), "
        f"try 2 started {(retried_at - failed_at).total_seconds():.1f}s later, ran {retried['duration']:.1f}s"
    )
    assert retried_at - failed_at >= SYNC_RETRY_DELAY, "the second try waited out the factory's retry delay"

    exported = exported_table(stack, gcs, bucket, table_root(PREFIX, KILL_TENANT, KILL_TABLE))
    assert exported.num_rows == KILL_ROWS
    assert_exact(stack, KILL_TABLE, exported)
    # The retry kept what the killed try had published: the same manifest, not a second export.
    assert manifest_generation(gcs, bucket, done_root) == published
    kept = exported_table(stack, gcs, bucket, done_root)
    assert kept.num_rows == TABLE_ROWS
    assert_exact(stack, KILL_DONE, kept)


# --- c. nothing outlives the stack --------------------------------------------------------------------
def test_every_process_the_module_started_is_gone_after_stop(celery, watch):
    watch.sample()
    names = {identity[1] for identity in watch.seen.values()}
    for service in ("redis-server", "api-server", "scheduler", "dag-processor", "celery worker"):
        assert any(service in name for name in names), f"{service} was never seen: {sorted(names)}"
    celery.stop()
    celery.redis.stop()
    time.sleep(0.5)  # processes SIGKILLed by a group kill are reaped by their parents a moment later
    assert watch.alive() == []
