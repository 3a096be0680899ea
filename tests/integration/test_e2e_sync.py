"""End to end through real parts: tenants Variable -> factory DAG -> ``airflow dags test`` -> objects in GCS.

The real Airflow CLI runs the tenant's sync DAG against PostgreSQL behind the Redshift shim (real
``RedshiftSQLHook``/``redshift_connector``) and fake-gcs-server (real ``GCSHook``); the objects are read
back and compared with the source value by value. The run has the openlineage provider on, with its file
transport: the table tasks' START and COMPLETE events are read back and checked against the manifests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import sqlite3

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from croniter import croniter
from pytest_httpserver import HTTPServer
from rs2gcs_devstack.airflow_home import AirflowHome
from rs2gcs_devstack.demo import BUCKET, PREFIX, TENANT_ID, demo_tenants
from rs2gcs_devstack.sample_data import SCHEMA_SQL, grant_sql

from airflow_rs2gcs.engine.paths import interval_partition
from airflow_rs2gcs.schedules import cron_for


def last_interval_before(cron: str, moment: str) -> tuple[dt.datetime, dt.datetime]:
    end = croniter(cron, dt.datetime.fromisoformat(moment)).get_prev(dt.datetime)
    return croniter(cron, end).get_prev(dt.datetime), end


pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

LOGICAL_DATE = "2026-11-23T00:00:00+00:00"
# The demo tenant is daily, staggered by a minute offset derived from its id: the run for this logical
# date covers the last complete day of ticks before it.
START, END = last_interval_before(cron_for(TENANT_ID, "daily"), "2026-11-23T00:00:00+00:00")
INTERVAL = interval_partition(START, END)
# The data contract, on the products table: a column excluded, one hashed with a key from a
# connection, and an earlier manifest (another interval) whose schema differs, so the run reports drift.
HASH_KEY, WEBHOOK_SECRET = "e2e-hmac-key-7c1d", "whsec-e2e-5b20"
PRODUCTS_CONTRACT = {
    "exclude_columns": ["attributes"],
    "hash_columns": ["title"],
    "on_schema_change": "evolve",
}
OLD_PRODUCTS_SCHEMA = [
    {"name": "sku", "arrow_type": "string", "source_type": "character varying", "source_type_oid": 1043},
    {"name": "title", "arrow_type": "string", "source_type": "text", "source_type_oid": 25},
    {"name": "legacy_code", "arrow_type": "int32", "source_type": "integer", "source_type_oid": 23},
]


@contextlib.contextmanager
def _old_products_manifest(stack):
    """An earlier interval's manifest of products while the sync runs; removed afterwards, so the other
    tests see only this run's objects."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    old = (
        f"{PREFIX}/{TENANT_ID}/public.products/dt=2026-01-01/interval=manual_20260101T000000Z/_manifest.json"
    )
    body = json.dumps({"manifest_version": 1, "schema": OLD_PRODUCTS_SCHEMA, "objects": [], "rows": 0})
    with pytest.MonkeyPatch.context() as env:
        for key, value in stack.airflow_env().items():
            env.setenv(key, value)
        gcs = GCSHook(gcp_conn_id="rs2gcs_gcs")
        gcs.upload(BUCKET, old, data=body, mime_type="application/json")
        yield
        gcs.delete(BUCKET, old)


@pytest.fixture(scope="module")
def lineage_file(tmp_path_factory):
    """Where the run's OpenLineage events go (the openlineage provider's file transport, one per line)."""
    return tmp_path_factory.mktemp("openlineage") / "events.jsonl"


@pytest.fixture(scope="module")
def receiver():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/hook", method="POST").respond_with_data("ok")
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def synced(stack, receiver, lineage_file):
    """Load the sample data, run the demo tenant's sync DAG once, and hand over the stack and a GCS hook."""
    stack.postgres.psql(SCHEMA_SQL + grant_sql(stack.postgres.user), database=stack.postgres.database)
    stack.gcs.create_bucket(BUCKET)
    transport = {"type": "file", "log_file_path": str(lineage_file), "append": True}
    key_conn = {"conn_type": "generic", "password": HASH_KEY}
    env = stack.airflow_env() | {
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
        "AIRFLOW_CONN_RS2GCS_E2E_HASH_KEY": json.dumps(key_conn),
    }
    with AirflowHome(env) as home:
        home.migrate()
        tenants = demo_tenants("rs2gcs_redshift", "rs2gcs_gcs")
        tenants[TENANT_ID]["tables"][0]["fetch_method"] = "driver"  # customers: the plain driver path
        products = next(t for t in tenants[TENANT_ID]["tables"] if t["name"] == "public.products")
        products.update(PRODUCTS_CONTRACT)
        tenants[TENANT_ID]["hash_key_conn_id"] = "rs2gcs_e2e_hash_key"
        hook = {"id": "wh_e2e", "url": receiver.url_for("/hook"), "secret": WEBHOOK_SECRET}
        tenants[TENANT_ID]["webhooks"] = [hook]
        home.set_variable("rs2gcs_tenants", tenants)
        with _old_products_manifest(stack):
            result = home.run("dags", "test", f"rs2gcs_sync__{TENANT_ID}", LOGICAL_DATE, timeout=900)
        with contextlib.closing(sqlite3.connect(home.path / "airflow.db")) as db:
            labels = db.execute(
                "select task_id, rendered_map_index, state from task_instance"
                " where dag_id = ? and map_index >= 0",
                (f"rs2gcs_sync__{TENANT_ID}",),
            ).fetchall()
        yield stack, result, labels


@pytest.fixture
def gcs(synced, stack_env):
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    return GCSHook(gcp_conn_id="rs2gcs_gcs")


def _manifest(gcs, table: str) -> dict:
    return json.loads(gcs.download(BUCKET, f"{PREFIX}/{TENANT_ID}/{table}/{INTERVAL}/_manifest.json"))


def _read_table(gcs, manifest: dict) -> pa.Table:
    return pa.concat_tables(
        pq.read_table(io.BytesIO(gcs.download(BUCKET, o["name"]))) for o in manifest["objects"]
    )


def test_every_table_lands_with_a_manifest_and_source_row_counts(synced, gcs):
    stack, _, _ = synced
    for table, count_sql in [
        ("public.customers", "select count(*) from public.customers"),
        ("public.orders", "select count(*) from public.orders"),
        ("public.products", "select count(*) from public.products"),
    ]:
        manifest = _manifest(gcs, table)
        source = int(stack.postgres.psql(count_sql, database=stack.postgres.database).strip())
        assert manifest["rows"] == source > 0
        assert _read_table(gcs, manifest).num_rows == source
        listed = {o["name"] for o in manifest["objects"]}
        present = set(gcs.list(BUCKET, prefix=f"{PREFIX}/{TENANT_ID}/{table}/"))
        assert present == listed | {f"{PREFIX}/{TENANT_ID}/{table}/{INTERVAL}/_manifest.json"}


def test_each_table_reads_through_the_path_it_chose(synced):
    _, result, _ = synced
    published = [line for line in result.stdout.splitlines() if "published gs://" in line]
    assert len(published) == 4, result.stdout[-3000:]
    for line in published:
        path = "driver" if "/public.customers/" in line else "wire"
        assert f"(read through the {path} path)" in line, line


def test_customers_round_trip_value_by_value(synced, gcs):
    """Read through the plain driver path (``fetch_method: driver``): the same values as the source."""
    landed = _read_table(gcs, _manifest(gcs, "public.customers")).sort_by("customer_id").to_pylist()
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    source = RedshiftSQLHook(redshift_conn_id="rs2gcs_redshift").get_records(
        "select customer_id, name, email, country, birth_date, is_active, credit_limit, created_at, notes "
        "from public.customers order by customer_id"
    )
    assert len(landed) == len(source)
    columns = [
        "customer_id",
        "name",
        "email",
        "country",
        "birth_date",
        "is_active",
        "credit_limit",
        "created_at",
        "notes",
    ]
    for got, want in zip(landed, source, strict=True):
        assert [got[c] for c in columns] == list(want)
    # Awkward text survived, and the empty string stayed distinct from NULL.
    notes = {row["notes"] for row in landed}
    assert {"", None, "line one\nline two", 'double "quoted"', "emoji 🚀✨", "back\\slash"} <= notes


def test_custom_query_table_and_schema(synced, gcs):
    manifest = _manifest(gcs, "daily_revenue")
    table = _read_table(gcs, manifest)
    assert table.schema.field("revenue").type == pa.decimal128(18, 2)
    assert table.schema.field("order_date").type == pa.date32()
    assert manifest["rows"] == table.num_rows == 320
    assert manifest["source_query"].startswith("select order_date")
    assert manifest["data_interval"] == {"start": START.isoformat(), "end": END.isoformat()}


def test_small_tables_share_a_task_named_by_its_tables(synced):
    """customers (5,000 rows) and products (500) share one task; the custom query has one of its own."""
    _, _, labels = synced
    by_task: dict[str, list[str]] = {}
    for task_id, label, state in labels:
        assert state == "success", (task_id, label)
        by_task.setdefault(task_id, []).append(label)
    assert by_task["sync_small_tables"][0].startswith("small: public.customers, public.products")
    assert "daily_revenue" in by_task["sync_table"]  # a custom query without expected_rows is large
    named = [n for label in by_task["sync_table"] + by_task["sync_small_tables"] for n in label.split(", ")]
    # orders (120,000 rows) is large once analysed, and may share a task before (size on disk / 32).
    assert sorted(n.removeprefix("small: ") for n in named) == sorted(
        ["public.customers", "public.products", "public.orders", "daily_revenue"]
    )


def _lineage_events(lineage_file) -> list[dict]:
    return [json.loads(line) for line in lineage_file.read_text().splitlines() if line.strip()]


def test_table_tasks_report_openlineage_inputs_outputs_and_statistics(synced, gcs, lineage_file):
    """START and COMPLETE of every table task name the Redshift tables read (with the columns of a table
    copied whole; the custom query's table from the SQL parser) and the folders written, and COMPLETE
    carries each folder's rows, bytes and files as its manifest has them."""
    stack, _, _ = synced
    # On the stack the host is an IP, which the amazon hook's naming keeps whole (no cluster to read).
    namespace = f"redshift://127.0.0.1:{stack.shim_port}"
    task_ids = ("sync_table", "sync_small_tables")
    events = [e for e in _lineage_events(lineage_file) if e["job"]["name"].split(".")[-1] in task_ids]
    folders = {
        f"{PREFIX}/{TENANT_ID}/{t}": t for t in ["public.customers", "public.orders", "public.products"]
    }
    folders[f"{PREFIX}/{TENANT_ID}/daily_revenue"] = "daily_revenue"
    for kind in ("START", "COMPLETE"):
        written = sorted(o["name"] for e in events if e["eventType"] == kind for o in e["outputs"])
        assert written == sorted(folders), kind
    for event in events:
        assert all(o["namespace"] == f"gs://{BUCKET}" for o in event["outputs"])
        if any(o["name"].endswith("/daily_revenue") for o in event["outputs"]):
            # The custom query: its table from the SQL parser, and no columns (they are the output's).
            assert [(i["namespace"], i["name"], i["facets"]) for i in event["inputs"]] == [
                (namespace, f"{stack.postgres.database}.public.orders", {})
            ]
            assert event["job"]["facets"]["sql"]["query"].startswith("select order_date")
            continue
        read = sorted(i["name"] for i in event["inputs"])
        assert read == sorted(f"{stack.postgres.database}.{folders[o['name']]}" for o in event["outputs"])
        assert {i["namespace"] for i in event["inputs"]} == {namespace}
    for event in (e for e in events if e["eventType"] == "COMPLETE"):
        inputs = {i["name"]: i for i in event["inputs"]}
        for output in event["outputs"]:
            table = folders[output["name"]]
            manifest = _manifest(gcs, table)
            statistics = output["outputFacets"]["outputStatistics"]
            assert (statistics["rowCount"], statistics["size"], statistics["fileCount"]) == (
                manifest["rows"],
                manifest["bytes"],
                len(manifest["objects"]),
            )
            columns = [f["name"] for f in output["facets"]["schema"]["fields"]]
            assert columns == [c["name"] for c in manifest["schema"]]
            if table != "daily_revenue":
                fields = inputs[f"{stack.postgres.database}.{table}"]["facets"]["schema"]["fields"]
                assert [(f["name"], f["type"]) for f in fields] == [
                    (c["name"], c["source_type"]) for c in manifest["schema"]
                ]
    for event in (e for e in events if e["eventType"] == "START"):
        assert all("outputStatistics" not in o.get("outputFacets", {}) for o in event["outputs"])


def test_products_contract_excludes_hashes_and_reports_drift_to_the_webhook(synced, gcs, receiver):
    """The data contract through a real sync: exclusion, HMAC keyed by a connection, schema_changed event."""
    import hashlib
    import hmac

    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    manifest = _manifest(gcs, "public.products")
    names = [c["name"] for c in manifest["schema"]]
    assert names == ["sku", "title", "price", "weight_kg", "rating", "launched_on"]  # attributes excluded
    assert manifest["hashed_columns"] == ["title"] and HASH_KEY not in json.dumps(manifest)
    landed = dict(zip(*_read_table(gcs, manifest).select(["sku", "title"]).to_pydict().values(), strict=True))
    source = RedshiftSQLHook(redshift_conn_id="rs2gcs_redshift").get_records(
        "SELECT sku, title FROM public.products"
    )
    assert landed == {
        sku: hmac.new(HASH_KEY.encode(), title.encode("utf-8"), hashlib.sha256).hexdigest()
        for sku, title in source
    }
    change = {
        "added": ["price", "weight_kg", "rating", "launched_on"],
        "removed": ["legacy_code"],
        "changed": [],
        "reordered": False,
    }
    assert manifest["schema_change"] == change
    events = [
        (request, json.loads(request.get_data()))
        for request, _ in receiver.log
        if request.headers.get("X-Rs2gcs-Event") == "schema_changed"
    ]
    assert [(e["table"], e["schema_change"]) for _, e in events] == [("public.products", change)]
    request, event = events[0]
    body = request.get_data()
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert request.headers["X-Rs2gcs-Signature"] == expected
    assert (
        event["manifest"] == f"gs://{BUCKET}/{PREFIX}/{TENANT_ID}/public.products/{INTERVAL}/_manifest.json"
    )
    outcomes = [
        json.loads(r.get_data()) for r, _ in receiver.log if r.headers.get("X-Rs2gcs-Event") == "sync.table"
    ]
    assert len(outcomes) == 4 and all(o["status"] == "success" for o in outcomes)
