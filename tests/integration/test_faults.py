"""Faults on the real stack, each ending in an exact export (no row missing, none extra, every value equal).

1. The Redshift backend is terminated (``pg_terminate_backend``) while the export fetches.
2. fake-gcs-server is stopped while files upload, and started again.
3. The process running the sync task is SIGKILLed while it uploads.
4. A tenant's webhook endpoint is down or hangs during a real sync DAG run.

The source is read back through the real driver, the export through the manifest's listed objects in
fake-gcs-server. Measured figures are printed (``-s`` shows them) and quoted in the README's
"Reliability" section.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pytest_httpserver import HTTPServer
from rs2gcs_devstack.airflow_home import AirflowHome
from rs2gcs_devstack.processes import free_port, log_tail
from stack_exports import export_through_engine
from werkzeug import Request, Response

pytestmark = [pytest.mark.integration, pytest.mark.timeout(360)]

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"

BUCKET = "faults"
TABLE = "public.rs2gcs_fault_rows"
ROWS = 300_000
COLUMNS = ("id", "amount", "created_at", "note", "flag")
INTERVAL = ("2026-05-01T00:00:00+00:00", "2026-05-02T00:00:00+00:00")
# Small fetches, batches and files: the export of ROWS takes seconds and uploads dozens of files, so a
# fault can land in the middle of it.
SMALL = {"fetch_size": 1000, "batch_rows": 1000, "max_file_bytes": 128 * 1024, "max_uploads_in_flight": 2}

TABLE_SQL = f"""
DROP TABLE IF EXISTS {TABLE};
CREATE TABLE {TABLE} (id bigint, amount numeric(12, 2), created_at timestamptz, note text, flag boolean);
INSERT INTO {TABLE}
SELECT g,
       CASE WHEN g % 13 = 0 THEN NULL ELSE round(((g::bigint * 7919) % 10000000) / 100.0, 2) END,
       timestamptz '2026-05-01 00:00:00+00' + g * interval '271 milliseconds',
       CASE WHEN g % 7 = 0 THEN NULL
            ELSE 'row ' || g || (ARRAY[', comma', ' "quoted"', E'\\nnewline', ' Ünïcödé 🚀', ''])[1 + g % 5]
       END,
       CASE WHEN g % 11 = 0 THEN NULL ELSE g % 2 = 0 END
FROM generate_series(1, {ROWS}) AS g;
"""


def measured(name: str, value: Any) -> None:
    """Print one measured figure (``pytest -s`` shows it)."""
    print(f"\nMEASURED {name}: {value}", flush=True)


# --- the source and the export, value by value -----------------------------------------------------------


@pytest.fixture(scope="module")
def big_table(stack):
    """The fault table in "Redshift", and the bucket."""
    stack.postgres.psql(
        TABLE_SQL + f'GRANT SELECT ON {TABLE} TO "{stack.postgres.user}";', database=stack.postgres.database
    )
    stack.gcs.create_bucket(BUCKET)
    return stack


@pytest.fixture(scope="module")
def source_rows(big_table) -> list[tuple]:
    """Every row of the fault table through the real driver, ordered by id."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    with pytest.MonkeyPatch.context() as patch:
        for key, value in big_table.airflow_env().items():
            patch.setenv(key, value)
        records = RedshiftSQLHook(redshift_conn_id="rs2gcs_redshift").get_records(
            f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY id"
        )
    assert len(records) == ROWS
    return [tuple(row) for row in records]


@pytest.fixture
def gcs(big_table, stack_env):
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    return GCSHook(gcp_conn_id="rs2gcs_gcs")


def objects_under(stack, prefix: str) -> list[str]:
    """Names of the objects under ``prefix/`` (plain JSON API, no client state)."""
    return sorted(name for name in stack.gcs.list_objects(BUCKET) if name.startswith(f"{prefix}/"))


def manifest_name(prefix: str) -> str:
    return f"{prefix}/_manifest.json"


def exported_rows(gcs, prefix: str) -> list[tuple]:
    """The rows of the objects the manifest lists, ordered by id; checks each object's rows and MD5."""
    manifest = json.loads(gcs.download(BUCKET, manifest_name(prefix)))
    bucket = gcs.get_conn().bucket(BUCKET)
    tables = []
    for listed in manifest["objects"]:
        blob = bucket.get_blob(listed["name"])
        assert blob is not None, f"the manifest lists {listed['name']}, which is missing"
        assert blob.md5_hash == listed["md5"], listed["name"]
        table = pq.read_table(io.BytesIO(blob.download_as_bytes()))
        assert table.num_rows == listed["rows"], listed["name"]
        tables.append(table)
    table = pa.concat_tables(tables).sort_by("id")
    assert table.num_rows == manifest["rows"]
    return list(zip(*(table.column(c).to_pylist() for c in COLUMNS), strict=True))


def assert_exact(source: list[tuple], exported: list[tuple]) -> None:
    """0 rows missing, 0 extra, and every value equal to the source's."""
    source_ids = {row[0] for row in source}
    exported_ids = [row[0] for row in exported]
    missing = source_ids.difference(exported_ids)
    extra = len(exported_ids) - len(source_ids.intersection(exported_ids))
    assert (len(missing), extra) == (0, 0), f"{len(missing)} rows missing, {extra} extra"
    if exported != source:
        first = next(i for i, (a, b) in enumerate(zip(source, exported, strict=True)) if a != b)
        pytest.fail(f"row {first} differs: source {source[first]!r}, export {exported[first]!r}")


def assert_exact_export(stack, gcs, prefix: str, source: list[tuple]) -> None:
    """The folder holds the manifest and exactly the objects it lists, and those hold the source."""
    manifest = json.loads(gcs.download(BUCKET, manifest_name(prefix)))
    listed = {o["name"] for o in manifest["objects"]}
    assert set(objects_under(stack, prefix)) == listed | {manifest_name(prefix)}
    assert_exact(source, exported_rows(gcs, prefix))


# --- running an export in-process ----------------------------------------------------------------------


def export(sql: str, prefix: str, **settings: Any):
    """One export through the engine with the real hooks (as the operator runs it)."""
    return export_through_engine(sql, BUCKET, prefix, INTERVAL, "faults", **settings)


class Background:
    """Runs a call on a thread and keeps its result or exception, and when it ended."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.ended: float | None = None
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.result = call()
        except BaseException as exc:  # handed to the test
            self.error = exc
        finally:
            self.ended = time.monotonic()

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"still running after {timeout}s"


def wait_until(condition: Callable[[], Any], timeout: float, what: str, still: Callable[[], bool]) -> Any:
    """Poll ``condition`` until it returns something true, and return that; fail if ``still`` turns false
    first (the run ended) or on timeout."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert still(), f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.05)
    return value


def seed_earlier_try(prefix: str) -> None:
    """An earlier complete try of the interval (1000 rows), so a new try must retract its manifest."""
    export(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE id <= 1000", prefix, **SMALL)


def upload_started(stack, prefix: str, index: int) -> bool:
    """True once data file ``index`` of a new try is up (the earlier try's manifest retracted)."""
    names = objects_under(stack, prefix)
    return f"{prefix}/part-{index:05d}.parquet" in names and manifest_name(prefix) not in names


FULL_SQL = f"SELECT {', '.join(COLUMNS)} FROM {TABLE}"


# --- 1. the Redshift connection cut while fetching ----------------------------------------------------------


def fetching_backends(stack) -> list[int]:
    """Pids of the export user's backends that run (or last ran) a FETCH of our cursor."""
    out = stack.postgres.psql(
        "SELECT pid FROM pg_stat_activity WHERE usename = "
        f"'{stack.postgres.user}' AND query LIKE 'FETCH FORWARD % FROM rs2gcs_%' AND pid <> pg_backend_pid()",
        database=stack.postgres.database,
    )
    return [int(pid) for pid in out.split()]


def test_a_backend_terminated_mid_fetch_leaves_nothing_complete_and_the_retry_is_exact(
    big_table, gcs, source_rows
):
    stack, prefix = big_table, "cut/rows"
    seed_earlier_try(prefix)
    run = Background(lambda: export(FULL_SQL, prefix, **SMALL))
    [backend] = wait_until(lambda: fetching_backends(stack), 60, "FETCH", run.is_running)
    # Cut once the export is well under way: the earlier manifest is gone and a second file is up.
    wait_until(lambda: upload_started(stack, prefix, 1), 60, "second data file", run.is_running)
    terminated = stack.postgres.psql(
        f"SELECT pg_terminate_backend({backend})", database=stack.postgres.database
    )
    cut = time.monotonic()
    assert terminated.strip() == "t"
    run.join(120)
    assert run.error is not None, "the export finished before the cut: make the table bigger"
    measured("fault 1 error", f"{type(run.error).__name__}: {run.error}")
    measured("fault 1 seconds from terminate to failed try", round(run.ended - cut, 2))
    assert objects_under(stack, prefix) == []  # no manifest, and the partial objects were deleted

    started = time.monotonic()
    result = export(FULL_SQL, prefix, **SMALL)
    measured("fault 1 retry seconds", round(time.monotonic() - started, 2))
    assert result.rows == ROWS
    assert_exact_export(stack, gcs, prefix, source_rows)


# --- 2. the GCS emulator stopped while files upload -------------------------------------------------------

OUTAGE_SECONDS = 5.0


class RecordsOf(logging.Handler):
    """Keeps the messages of one logger (Airflow's logging setup can keep them from pytest's caplog)."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.DEBUG)
        self.logger = logging.getLogger(name)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> RecordsOf:
        self.saved = (self.logger.level, self.logger.disabled)
        self.logger.setLevel(logging.DEBUG)
        self.logger.disabled = False
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self.saved[0])
        self.logger.disabled = self.saved[1]


def test_a_gcs_outage_mid_upload_is_ridden_through_by_the_upload_retries(big_table, gcs, source_rows):
    stack, prefix = big_table, "outage/rows"
    seed_earlier_try(prefix)
    with RecordsOf("airflow_rs2gcs.engine.uploader") as ours, RecordsOf("google.api_core.retry") as client:
        started = time.monotonic()
        run = Background(lambda: export(FULL_SQL, prefix, **SMALL))
        wait_until(lambda: upload_started(stack, prefix, 1), 60, "second data file", run.is_running)
        up_before = objects_under(stack, prefix)
        stack.gcs.stop()
        down = time.monotonic()
        try:
            time.sleep(OUTAGE_SECONDS)
            assert run.is_running(), "the export ended during the outage"
        finally:
            stack.gcs.start()  # from the main thread: the emulator dies with the thread that started it
        outage = time.monotonic() - down
        run.join(180)
    assert run.error is None, f"the try did not ride through a {outage:.1f}s outage: {run.error!r}"
    measured("fault 2 outage seconds", round(outage, 2))
    measured("fault 2 files up before the outage", len(up_before))
    measured("fault 2 retries by the uploader", sum("retrying in" in m for m in ours.messages))
    measured(
        "fault 2 retries inside the storage client", sum("Retrying due to" in m for m in client.messages)
    )
    measured("fault 2 export seconds with the outage", round(run.ended - started, 2))
    assert len(up_before) < run.result.objects  # the outage hit the middle of the uploads
    assert run.result.rows == ROWS
    assert_exact_export(stack, gcs, prefix, source_rows)


# --- Airflow: one throwaway home for the DAG runs of faults 3 and 4 -----------------------------------------

LOGICAL_DATE = "2026-05-02T00:00:00+00:00"
KILL_DAG_ID = "rs2gcs_fault_kill"
KILL_PREFIX = "kill/rows/dt=2026-05-02"
KILL_DAG_FILE = f"""
import pendulum
from airflow.sdk import DAG
from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator

with DAG("{KILL_DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    RedshiftToGCSOperator(
        task_id="sync_table",
        sql="{FULL_SQL}",
        bucket="{BUCKET}",
        object_prefix="kill/rows/dt={{{{ ds }}}}",
        redshift_conn_id="rs2gcs_redshift",
        gcp_conn_id="rs2gcs_gcs",
        fetch_size={SMALL["fetch_size"]},
        batch_rows={SMALL["batch_rows"]},
        max_file_bytes={SMALL["max_file_bytes"]},
        max_uploads_in_flight={SMALL["max_uploads_in_flight"]},
    )
"""
HANG_SECONDS = 6.0  # longer than the 5 s request timeout


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A loopback port nobody listens on (bound once by the kernel, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebhookEndpoints:
    """A real HTTP server: ``/ok`` answers at once, ``/hang`` only after the request timeout has passed."""

    def __init__(self) -> None:
        self.arrivals: dict[str, int] = {"/ok": 0, "/hang": 0}  # counted on arrival, before any answer
        self.server = HTTPServer(host="127.0.0.1", port=free_port(), threaded=True)
        self.server.expect_request("/ok", method="POST").respond_with_handler(self._ok)
        self.server.expect_request("/hang", method="POST").respond_with_handler(self._hang)

    def _ok(self, request: Request) -> Response:
        self.arrivals["/ok"] += 1
        return Response("ok", status=200)

    def _hang(self, request: Request) -> Response:
        self.arrivals["/hang"] += 1
        time.sleep(HANG_SECONDS)
        return Response("late", status=200)


@pytest.fixture(scope="module")
def webhook_endpoints():
    endpoints = WebhookEndpoints()
    endpoints.server.start()
    yield endpoints
    endpoints.server.clear()
    if endpoints.server.is_running():
        endpoints.server.stop()


def hook_tenant(tenant_id: str, url: str) -> dict[str, Any]:
    """A daily tenant syncing the fault table, with one webhook at ``url``."""
    return {
        "source": "redshift_to_gcs",
        "status": "configured",
        "redshift_conn_id": "rs2gcs_redshift",
        "gcp_conn_id": "rs2gcs_gcs",
        "bucket": BUCKET,
        "prefix": "tenants",
        "syncFrequency": "daily",
        "timezone": "UTC",
        "tables": [{"name": TABLE}],
        "webhooks": [{"id": f"wh_{tenant_id}", "url": url, "secret": "fault-secret"}],
    }


@pytest.fixture(scope="module")
def airflow_home(big_table, closed_port, webhook_endpoints, tmp_path_factory):
    """A migrated AIRFLOW_HOME whose DAGs folder holds the factory's file and the kill test's DAG."""
    dags = tmp_path_factory.mktemp("fault-dags")
    shutil.copy(DAGS_FOLDER / "rs2gcs.py", dags / "rs2gcs.py")
    (dags / "fault_kill.py").write_text(KILL_DAG_FILE)
    tenants = {
        "hookok": hook_tenant("hookok", webhook_endpoints.server.url_for("/ok")),
        "hookdown": hook_tenant("hookdown", f"http://127.0.0.1:{closed_port}/hook"),
        "hookhang": hook_tenant("hookhang", webhook_endpoints.server.url_for("/hang")),
    }
    # Read by the factory at parse time and inside the task (env Variables come first in every process).
    env = {**big_table.airflow_env(), "AIRFLOW_VAR_RS2GCS_TENANTS": json.dumps(tenants)}
    with AirflowHome(env, dags_folder=dags) as home:
        home.migrate()
        yield home


def task_durations(home: AirflowHome, dag_id: str) -> dict[str, float]:
    """Seconds each task instance of the DAG's latest run took, from the metadata DB."""
    with contextlib.closing(sqlite3.connect(home.path / "airflow.db")) as db:
        rows = db.execute(
            "SELECT task_id, map_index, duration FROM task_instance WHERE dag_id = ? AND run_id = "
            "(SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)",
            (dag_id, dag_id),
        ).fetchall()
    return {f"{task}[{index}]" if index >= 0 else task: duration for task, index, duration in rows}


def run_state(home: AirflowHome, dag_id: str) -> str:
    with contextlib.closing(sqlite3.connect(home.path / "airflow.db")) as db:
        [state] = db.execute(
            "SELECT state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
    return state


# --- 3. the task's process SIGKILLed while it uploads ------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def start_dags_test(home: AirflowHome, dag_id: str, log_path: Path) -> subprocess.Popen[bytes]:
    """``airflow dags test <dag_id> LOGICAL_DATE`` in the background, its output to ``log_path``."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "airflow", "dags", "test", dag_id, LOGICAL_DATE],
            env=home.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def still_running(process: subprocess.Popen[bytes], log_path: Path) -> bool:
    """True while ``process`` runs; fails the test with the tail of its log once it has exited."""
    if process.poll() is None:
        return True
    pytest.fail(f"the run exited with {process.returncode} too early; its log:\n{log_tail(log_path, 60)}")


def kill_tree(root: int) -> int:
    """SIGKILL ``root`` and every descendant (the task may run in a child of the CLI); return how many."""
    tree = process_tree(root)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(tree)


def test_a_sync_task_killed_mid_upload_publishes_nothing_and_the_next_run_is_exact(
    airflow_home, big_table, gcs, source_rows, tmp_path
):
    stack, prefix, log_path = big_table, KILL_PREFIX, tmp_path / "killed-run.log"
    seed_earlier_try(prefix)
    started = time.monotonic()
    process = start_dags_test(airflow_home, KILL_DAG_ID, log_path)
    try:
        still = functools.partial(still_running, process, log_path)
        wait_until(lambda: upload_started(stack, prefix, 1), 240, "second data file", still)
        killed = kill_tree(process.pid)
        killed_at = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    time.sleep(1)  # nothing of the killed try may still be writing
    left = objects_under(stack, prefix)
    measured("fault 3 killed after seconds", round(killed_at, 1))
    measured("fault 3 processes killed", killed)
    measured("fault 3 data objects left by the killed try", len(left))
    assert manifest_name(prefix) not in left  # the earlier try's manifest was retracted, none published
    assert left and all("/part-" in name for name in left)
    assert left == objects_under(stack, prefix)

    rerun_started = time.monotonic()
    airflow_home.run("dags", "test", KILL_DAG_ID, LOGICAL_DATE, timeout=300)
    measured("fault 3 rerun seconds (airflow dags test)", round(time.monotonic() - rerun_started, 1))
    assert run_state(airflow_home, KILL_DAG_ID) == "success"
    assert_exact_export(stack, gcs, prefix, source_rows)  # the killed try's leftovers are gone too


# --- 4. a webhook endpoint that is down or hangs, in a real sync DAG run -----------------------------------

WEBHOOK_BUDGET_SECONDS = 30.0  # README "Webhooks": one budget shared by all deliveries of a run


def manifest_folder(stack, tenant_id: str) -> str:
    """The folder of the one manifest the tenant's sync published for the fault table."""
    root = f"tenants/{tenant_id}/{TABLE}"
    [manifest] = [name for name in objects_under(stack, root) if name.endswith("/_manifest.json")]
    return manifest.rsplit("/", 1)[0]


def delivery_attempts(output: str, tenant_id: str) -> tuple[str, int]:
    """The webhook's outcome in the run's log: ``("delivered", n)`` or ``("failed", n)`` attempts."""
    [(outcome, attempts)] = re.findall(
        rf"webhook wh_{tenant_id}: (delivered|delivery failed) \(.*?\) after (\d+) attempt", output
    )
    return outcome.split()[-1], int(attempts)


@pytest.mark.parametrize(
    ("tenant_id", "path", "outcome"),
    [("hookok", "/ok", "delivered"), ("hookdown", None, "failed"), ("hookhang", "/hang", "failed")],
    ids=["healthy-baseline", "down", "hanging"],
)
def test_a_dead_or_hanging_webhook_never_fails_the_sync_nor_holds_it_past_the_budget(
    airflow_home, big_table, gcs, source_rows, webhook_endpoints, tenant_id, path, outcome
):
    dag_id = f"rs2gcs_sync__{tenant_id}"
    arrived_before = webhook_endpoints.arrivals.get(path, 0)
    started = time.monotonic()
    result = airflow_home.run("dags", "test", dag_id, LOGICAL_DATE, timeout=300)
    wall = time.monotonic() - started
    durations = task_durations(airflow_home, dag_id)
    delivered, attempts = delivery_attempts(result.stdout + result.stderr, tenant_id)
    measured(f"fault 4 {tenant_id}: run seconds (airflow dags test)", round(wall, 1))
    measured(f"fault 4 {tenant_id}: task seconds", {k: round(v, 2) for k, v in durations.items()})
    measured(f"fault 4 {tenant_id}: webhook {delivered} after attempts", attempts)
    assert run_state(airflow_home, dag_id) == "success"
    assert delivered == outcome
    assert attempts == 1 if outcome == "delivered" else attempts > 1  # a dead endpoint is retried
    if path is not None:  # every attempt reached the server
        assert webhook_endpoints.arrivals[path] - arrived_before == attempts
    # The summary task holds the deliveries: it stays within the shared budget (+ its own small work).
    assert durations["summary"] <= WEBHOOK_BUDGET_SECONDS + 5
    assert_exact_export(big_table, gcs, manifest_folder(big_table, tenant_id), source_rows)
