"""The local stack, through real parts only: PostgreSQL 16 behind the Redshift handshake shim reached by the
real ``RedshiftSQLHook``/``redshift_connector``, fake-gcs-server reached by the real ``GCSHook``, and the
process hygiene (clean stop, SIGTERM, SIGKILL + PDEATHSIG).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

if "AIRFLOW_HOME" not in os.environ:  # before anything imports airflow
    _AIRFLOW_HOME = tempfile.mkdtemp(prefix="rs2gcs-test-airflow-")
    os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
    atexit.register(shutil.rmtree, _AIRFLOW_HOME, True)

from rs2gcs_devstack import shim
from rs2gcs_devstack.processes import pid_alive, port_open
from rs2gcs_devstack.stack import (
    DEFAULT_GCP_CONN_ID,
    DEFAULT_REDSHIFT_CONN_ID,
    LocalStack,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack():
    """One running stack for the module."""
    with LocalStack() as running:
        yield running


@pytest.fixture
def airflow_env(stack, monkeypatch):
    """The stack's connections and STORAGE_EMULATOR_HOST in this process's environment."""
    for key, value in stack.airflow_env().items():
        monkeypatch.setenv(key, value)
    return stack


def _redshift_hook():
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    return RedshiftSQLHook(redshift_conn_id=DEFAULT_REDSHIFT_CONN_ID)


def _gcs_hook():
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    return GCSHook(gcp_conn_id=DEFAULT_GCP_CONN_ID)


def _wait_dead(pids, timeout: float = 10.0) -> list[int]:
    """Wait until none of ``pids`` is alive; return the ones still alive at the timeout."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if pid_alive(pid)]
        time.sleep(0.05)
    return alive


def _descendants(pid: int) -> list[int]:
    """``pid`` and all its descendants (PostgreSQL backends, ...), via /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


# --- Redshift through the shim ---------------------------------------------------------------------------
def test_hook_version_and_count(airflow_env):
    hook = _redshift_hook()
    version = hook.get_first("select version()")[0]
    assert version.startswith("PostgreSQL 16")
    hook.run(
        [
            "drop table if exists public.numbers",
            "create table public.numbers as select g as n from generate_series(1, 1234) g",
        ]
    )
    assert hook.get_first("select count(*) from public.numbers")[0] == 1234


def test_declare_cursor_fetch_forward(airflow_env):
    conn = _redshift_hook().get_conn()
    try:
        cursor = conn.cursor()
        cursor.execute("begin")
        cursor.execute(
            "declare c no scroll cursor for select g, md5(g::text) from generate_series(1, 25000) g"
        )
        batches = []
        while True:
            cursor.execute("fetch forward 10000 from c")
            rows = cursor.fetchall()
            if not rows:
                break
            batches.append(len(rows))
        cursor.execute("close c")
        cursor.execute("commit")
    finally:
        conn.close()
    assert batches == [10000, 10000, 5000]


def test_catalog_query(airflow_env):
    airflow_env.postgres.psql(
        "create schema if not exists sales; "
        "create table if not exists sales.orders(id bigint, amount numeric(12,2)); "
        f"alter schema sales owner to {airflow_env.postgres.user}; "
        f"alter table sales.orders owner to {airflow_env.postgres.user};"
    )
    rows = _redshift_hook().get_records(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema not in ('pg_catalog', 'information_schema')"
    )
    assert ("sales", "orders") in {tuple(row) for row in rows}


UNLOAD_ROWS = 3000


def _unload_sql(prefix: str, *options: str) -> str:
    return (
        "UNLOAD ('select id, payload, note from public.unload_src order by id') "
        f"TO 's3://staging/{prefix}' " + " ".join(options)
    )


@pytest.fixture(scope="module")
def unload_source(stack):
    """~12 MB of rows (4 KB each in memory) in a table, and the staging bucket in the local S3."""
    stack.postgres.psql(
        "drop table if exists public.unload_src;"
        "create table public.unload_src as select g as id, repeat(md5(g::text), 128) as payload, "
        f"(case when g % 7 = 0 then null else 'it''s ' || g end)::varchar(40) as note "
        f"from generate_series(1, {UNLOAD_ROWS}) g;"
        f"grant select on public.unload_src to {stack.postgres.user};"
    )
    stack.s3.create_bucket("staging")
    return stack


def test_unload_writes_parquet_parts_and_verbose_manifest(airflow_env, unload_source):
    import pyarrow.parquet as pq

    conn = _redshift_hook().get_conn()
    try:
        cursor = conn.cursor()
        cursor.execute(
            _unload_sql(
                "run1/t_",
                "IAM_ROLE 'arn:aws:iam::123456789012:role/unload'",
                "FORMAT PARQUET MANIFEST VERBOSE MAXFILESIZE 5 MB",
            )
        )
        assert cursor.description is None
        assert conn.notices[-1][b"S"] == b"INFO"
        assert (
            conn.notices[-1][b"M"]
            == f"UNLOAD completed, {UNLOAD_ROWS} record(s) unloaded successfully.".encode()
        )
        cursor.execute("select count(*) from public.unload_src")  # the session still works
        assert cursor.fetchone()[0] == UNLOAD_ROWS
        conn.commit()
    finally:
        conn.close()

    s3 = unload_source.s3.client()
    manifest = json.loads(s3.get_object(Bucket="staging", Key="run1/t_manifest")["Body"].read())
    urls = [e["url"] for e in manifest["entries"]]
    assert urls == [f"s3://staging/run1/t_0000_part_{i:02d}.parquet" for i in range(len(urls))]
    assert len(urls) >= 2
    assert sum(e["meta"]["record_count"] for e in manifest["entries"]) == UNLOAD_ROWS
    assert manifest["meta"]["record_count"] == UNLOAD_ROWS
    assert manifest["author"]["name"] == "Amazon Redshift"
    assert manifest["schema"]["elements"] == [
        {"name": "id", "type": {"base": "integer"}},
        {"name": "payload", "type": {"base": "text"}},
        {"name": "note", "type": {"base": "character varying", "max_length": 40}},
    ]
    rows = []
    for entry in manifest["entries"]:
        body = s3.get_object(Bucket="staging", Key=entry["url"].removeprefix("s3://staging/"))["Body"].read()
        assert len(body) == entry["meta"]["content_length"] <= 5 * 1024 * 1024
        table = pq.read_table(pa_buffer(body))
        assert table.num_rows == entry["meta"]["record_count"]
        rows += table.to_pylist()
    assert [r["id"] for r in rows] == list(range(1, UNLOAD_ROWS + 1))
    assert rows[6] == {"id": 7, "payload": _md5(7) * 128, "note": None}
    assert rows[0]["note"] == "it's 1"

    # the same prefix again: refused without ALLOWOVERWRITE, as Redshift does
    hook = _redshift_hook()
    with pytest.raises(Exception, match="unload destination on S3 is not empty"):
        hook.run(_unload_sql("run1/t_", "IAM_ROLE 'arn:aws:iam::1:role/r'", "FORMAT PARQUET MANIFEST"))


def test_unload_without_iam_role_is_refused_and_the_session_goes_on(airflow_env, unload_source):
    conn = _redshift_hook().get_conn()
    try:
        cursor = conn.cursor()
        with pytest.raises(Exception, match="IAM_ROLE") as raised:
            cursor.execute(_unload_sql("run2/t_", "FORMAT PARQUET MANIFEST VERBOSE"))
        assert "42601" in str(raised.value)
        conn.rollback()
        cursor.execute("select 41 + 1")
        assert cursor.fetchone()[0] == 42
    finally:
        conn.close()
    listed = unload_source.s3.client().list_objects_v2(Bucket="staging", Prefix="run2/")
    assert listed.get("KeyCount", 0) == 0


def test_unload_over_the_simple_query_protocol_parallel_off_cleanpath(unload_source):
    """psycopg2 sends a simple Query (psql does too): PARALLEL OFF names, no manifest, CLEANPATH."""
    import psycopg2

    stack = unload_source
    stack.s3.client().put_object(Bucket="staging", Key="run3/t_stale", Body=b"old")
    sql = (
        "unload ('select id from public.unload_src where id <= 10') to 's3://staging/run3/t_' "
        "iam_role 'arn:aws:iam::1:role/r' format as parquet cleanpath parallel off maxfilesize as 1 gb"
    )
    conn = psycopg2.connect(
        host="127.0.0.1",
        port=stack.shim_port,
        user=stack.postgres.user,
        password=stack.postgres.password,
        dbname=stack.postgres.database,
        sslmode="disable",
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            assert cursor.statusmessage == "UNLOAD"
        assert conn.notices[-1] == "INFO:  UNLOAD completed, 10 record(s) unloaded successfully.\n"
    finally:
        conn.close()
    listed = stack.s3.client().list_objects_v2(Bucket="staging", Prefix="run3/")
    assert [o["Key"] for o in listed["Contents"]] == ["run3/t_000.parquet"]


def pa_buffer(body: bytes):
    import pyarrow as pa

    return pa.BufferReader(body)


def _md5(n: int) -> str:
    import hashlib

    return hashlib.md5(str(n).encode()).hexdigest()


def test_driver_startup_keys_are_all_handled(stack):
    """Capture what the installed redshift_connector really sends; the shim keeps only PostgreSQL keys."""
    import redshift_connector

    listener = socket.create_server(("127.0.0.1", 0))
    captured: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            length = struct.unpack("!i", conn.recv(4, socket.MSG_WAITALL))[0]
            captured.append(struct.pack("!i", length) + conn.recv(length - 4, socket.MSG_WAITALL))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with pytest.raises(Exception):  # noqa: B017 - our fake server just hangs up
        redshift_connector.connect(
            host="127.0.0.1",
            port=listener.getsockname()[1],
            user="u",
            password="p",
            database="d",
            ssl=False,
            timeout=5,
        )
    thread.join(5)
    listener.close()
    sent = dict(shim.parse_startup(captured[0]))
    rewritten, dropped = shim.rewrite_startup(captured[0])
    rejected = {"client_protocol_version", "driver_version", "os_version", "driver_discovery_version"}
    assert rejected <= set(dropped)
    assert dict(shim.parse_startup(rewritten)) == {k: v for k, v in sent.items() if k not in dropped}
    assert {"user", "database"} <= set(dict(shim.parse_startup(rewritten)))


def test_shim_answers_ssl_request_with_n(stack):
    with socket.create_connection(("127.0.0.1", stack.shim_port), timeout=5) as sock:
        sock.sendall(struct.pack("!ii", 8, shim.SSL_REQUEST))
        assert sock.recv(1) == b"N"
        sock.sendall(
            shim.build_startup([("user", stack.postgres.user), ("database", "dev"), ("driver_version", "x")])
        )
        kind, _, auth = struct.unpack("!cii", sock.recv(9, socket.MSG_WAITALL))
        assert (kind, auth) == (b"R", 5)  # md5 password request from PostgreSQL


def test_cancel_request_goes_through(airflow_env):
    conn = _redshift_hook().get_conn()
    errors: list[Exception] = []

    def sleep_query() -> None:
        try:
            conn.cursor().execute("select pg_sleep(30)")
        except Exception as exc:  # the cancel
            errors.append(exc)

    worker = threading.Thread(target=sleep_query)
    started = time.monotonic()
    worker.start()
    time.sleep(0.5)
    with socket.create_connection(("127.0.0.1", airflow_env.shim_port), timeout=5) as sock:
        sock.sendall(struct.pack("!ii", 16, shim.CANCEL_REQUEST) + conn._backend_key_data)
    worker.join(20)
    conn.close()
    assert time.monotonic() - started < 15
    assert errors and "57014" in str(errors[0])


# --- GCS ---------------------------------------------------------------------------------------------------
def test_gcs_hook_upload_download(airflow_env):
    bucket = f"test-{uuid.uuid4().hex[:8]}"
    airflow_env.gcs.create_bucket(bucket)
    hook = _gcs_hook()
    small, large = os.urandom(300_000), os.urandom(9 * 1024 * 1024)  # large: a resumable upload
    hook.upload(bucket, "dir/small.bin", data=small)
    hook.upload(bucket, "dir/large.bin", data=large)
    assert hook.download(bucket, "dir/small.bin") == small
    assert hook.download(bucket, "dir/large.bin") == large
    assert sorted(hook.list(bucket, prefix="dir/")) == ["dir/large.bin", "dir/small.bin"]


def test_gcs_restart_keeps_objects(airflow_env):
    bucket = f"keep-{uuid.uuid4().hex[:8]}"
    airflow_env.gcs.create_bucket(bucket)
    _gcs_hook().upload(bucket, "a.txt", data=b"survives")
    port, old_pid = airflow_env.gcs.port, airflow_env.gcs.pid
    airflow_env.gcs.stop()
    assert not port_open(port)
    airflow_env.gcs.start()
    assert (airflow_env.gcs.port, airflow_env.gcs.pid != old_pid) == (port, True)
    assert _gcs_hook().download(bucket, "a.txt") == b"survives"


def test_local_s3_serves_the_amazon_providers_s3_hook_and_stop_frees_its_port(monkeypatch):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from rs2gcs_devstack.s3 import LocalS3

    with LocalS3() as s3:
        monkeypatch.setenv("AIRFLOW_CONN_RS2GCS_S3", s3.aws_connection_json())
        s3.create_bucket("staging")
        s3.create_bucket("staging")  # again: no error
        body = os.urandom(200_000)
        hook = S3Hook(aws_conn_id="rs2gcs_s3")
        hook.load_bytes(body, key="unload/part-0000.parquet", bucket_name="staging")
        assert hook.list_keys("staging", prefix="unload/") == ["unload/part-0000.parquet"]
        assert s3.client().get_object(Bucket="staging", Key="unload/part-0000.parquet")["Body"].read() == body
        port, pid = s3.port, s3.pid
    assert not port_open(port) and pid is not None and not pid_alive(pid)


# --- process hygiene ---------------------------------------------------------------------------------------
def test_stop_leaves_no_process_and_closes_ports():
    local = LocalStack().start()
    pids = [pid for pid in local.pids.values() for pid in _descendants(pid)]
    ports = [port for name, port in local.ports.items() if name != "s3"]  # S3 starts on first use
    assert len(local.pids) == 3 and all(port_open(port) for port in ports)
    assert not port_open(local.ports["s3"])
    local.stop()
    assert _wait_dead(pids, timeout=5) == []
    assert not any(port_open(port) for port in ports)


_CHILD_SCRIPT = textwrap.dedent("""
    import json, time
    from rs2gcs_devstack.stack import LocalStack
    with LocalStack() as stack:
        print(json.dumps({"pids": stack.pids, "ports": stack.ports,
                          "dirs": [str(stack.postgres.base_dir), str(stack.gcs.base_dir)]}), flush=True)
        time.sleep(120)
""")


def _stack_in_subprocess() -> tuple[subprocess.Popen, dict]:
    """A Python process running a LocalStack; returns it and what it reported."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD_SCRIPT], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline()
    assert line, f"child stack did not start (exit code {proc.poll()})"
    info = json.loads(line)
    info["all_pids"] = [p for pid in info["pids"].values() for p in _descendants(pid)]
    return proc, info


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_stack_cleanly(sig):
    proc, info = _stack_in_subprocess()
    proc.send_signal(sig)
    proc.wait(20)
    assert _wait_dead(info["all_pids"], timeout=5) == []
    assert not any(port_open(port) for port in info["ports"].values())
    assert not any(Path(d).exists() for d in info["dirs"])  # stopped by the handlers, not by the kernel


def test_sigkill_leaves_nothing_and_next_start_works():
    proc, info = _stack_in_subprocess()
    assert len(info["pids"]) == 3 and all(pid_alive(pid) for pid in info["all_pids"])
    proc.kill()
    proc.wait(10)
    assert _wait_dead(info["all_pids"], timeout=10) == []  # PDEATHSIG (postgres runs as another user)
    with LocalStack() as again:
        assert again.postgres.psql("select 41 + 1").strip() == "42"
    assert not any(Path(d).exists() for d in info["dirs"])  # stale dirs of the dead run were removed
