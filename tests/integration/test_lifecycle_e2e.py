"""Connect -> Configure -> Sync -> Disconnect through ``airflow dags test`` with conf, on real parts.

Real Airflow CLI, PostgreSQL behind the Redshift shim, fake-gcs-server and a real HTTP receiver for
the webhooks (pytest-httpserver): the exact widget messages, the gates, signed deliveries, the
webhook DELETE on disconnect, and the sync DAG gone at the next parse.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import pytest
from pytest_httpserver import HTTPServer
from rs2gcs_devstack.airflow_home import AirflowHome
from rs2gcs_devstack.sample_data import REVENUE_QUERY, SCHEMA_SQL, grant_sql

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SECRET = "whsec-lifecycle-3f9a"
BUCKET = "lifecycle-exports"


@pytest.fixture(scope="module")
def receiver():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/hook", method="POST").respond_with_data("ok")
    server.expect_request("/registrations/wh_1", method="DELETE").respond_with_data("", status=204)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def home(stack):
    stack.postgres.psql(SCHEMA_SQL + grant_sql(stack.postgres.user), database=stack.postgres.database)
    stack.gcs.create_bucket(BUCKET)
    with AirflowHome(stack.airflow_env()) as airflow_home:
        airflow_home.migrate()
        yield airflow_home


def trigger(home: AirflowHome, dag_id: str, conf: dict, *args: str):
    return home.run("dags", "test", dag_id, *args, "--conf", json.dumps(conf), check=False, timeout=600)


def tenants(home: AirflowHome) -> dict:
    result = home.run("variables", "get", "rs2gcs_tenants", check=False)
    return json.loads(result.stdout[result.stdout.index("{") :]) if result.returncode == 0 else {}


def connect_conf(tenant_id: str, receiver: HTTPServer, **overrides) -> dict:
    return {
        "tenant_id": tenant_id,
        "redshift_conn_id": "rs2gcs_redshift",
        "gcp_conn_id": "rs2gcs_gcs",
        "bucket": BUCKET,
        "prefix": "lifecycle",
        "webhooks": [
            {
                "id": "wh_1",
                "url": receiver.url_for("/hook"),
                "secret": SECRET,
                "registration_url": receiver.url_for("/registrations/wh_1"),
            }
        ],
        **overrides,
    }


# The data contract rides along: customers (incremental; the run's hour holds none of its rows) writes
# its whole key set, daily_revenue is verified by a count in the export's snapshot.
CUSTOMERS_CONTRACT = {
    "mode": "incremental",
    "cursor_column": "created_at",
    "capture_deletes": True,
    "primary_key": ["customer_id"],
}
CONFIGURE = {
    "tenant_id": "acme",
    "tables": ["public.customers", "daily_revenue"],
    "table_options": {
        "public.customers": CUSTOMERS_CONTRACT,
        "daily_revenue": {"query": REVENUE_QUERY, "verify": "count"},
    },
    "syncFrequency": "hourly",
    "format": "parquet",
    "timezone": "Europe/Berlin",
}


def test_configure_before_connect_is_refused(home):
    result = trigger(home, "rs2gcs_configure", CONFIGURE)
    assert result.returncode != 0
    assert "Tenant 'acme' is not connected; run rs2gcs_connect for it first" in result.stdout + result.stderr


def test_unknown_source_and_bad_bucket_are_refused_and_nothing_is_recorded(home, receiver):
    result = trigger(home, "rs2gcs_connect", connect_conf("acme", receiver, source="s3_to_gcs"))
    assert "Unknown source 's3_to_gcs' for tenant 'acme'; allowed: 'redshift_to_gcs'" in result.stdout
    result = trigger(home, "rs2gcs_connect", connect_conf("acme", receiver, bucket="no-such-bucket"))
    assert result.returncode != 0
    assert "could not find the bucket" in result.stdout and "'no-such-bucket'" in result.stdout
    assert "acme" not in tenants(home)


def check_the_contract(stack, outcomes: dict) -> None:
    """daily_revenue's manifest has its count; customers' lists _keys/ objects holding every customer id."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    gcs = GCSHook(gcp_conn_id="rs2gcs_gcs")

    def manifest(table: str) -> dict:
        return json.loads(gcs.download(BUCKET, outcomes[table]["manifest"].removeprefix(f"gs://{BUCKET}/")))

    revenue = manifest("daily_revenue")
    assert revenue["source_rows"] == revenue["rows"] == outcomes["daily_revenue"]["rows"]
    keys = manifest("public.customers")["keys"]
    assert "source_rows" not in manifest("public.customers")
    objects = [io.BytesIO(gcs.download(BUCKET, o["name"])) for o in keys["objects"]]
    ids = pa.concat_tables(pq.read_table(o) for o in objects)
    source = stack.postgres.psql("select customer_id from public.customers", database=stack.postgres.database)
    assert keys["columns"] == ["customer_id"] and keys["rows"] == ids.num_rows
    assert sorted(ids.column("customer_id").to_pylist()) == sorted(map(int, source.split()))
    assert all("/_keys/part-" in o["name"] for o in keys["objects"])


def test_full_lifecycle(home, receiver, stack, stack_env):
    result = trigger(home, "rs2gcs_connect", connect_conf("acme", receiver))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "] Activation successful for redshift_to_gcs" in result.stdout
    assert tenants(home)["acme"]["status"] == "connected"

    result = trigger(home, "rs2gcs_configure", {**CONFIGURE, "tables": [], "table_options": {}})
    assert result.returncode != 0
    assert "field 'tables': select at least one table; readable by connection 'rs2gcs_redshift': " in (
        result.stdout
    )
    # The preview names the first relations in catalog order; other modules' tables on this worker's
    # shared stack may sort before public.customers, so check it names real relations, not which ones.
    preview = result.stdout.split("readable by connection 'rs2gcs_redshift': ")[1].splitlines()[0]
    assert re.search(r"\w+\.\S+", preview), preview

    bad = {**CONFIGURE, "table_options": {"daily_revenue": {"query": "delete from public.orders"}}}
    result = trigger(home, "rs2gcs_configure", bad)
    assert result.returncode != 0 and "field 'query' is not allowed" in result.stdout

    bad = {
        **CONFIGURE,
        "table_options": {"public.customers": {**CUSTOMERS_CONTRACT, "cursor_column": "name"}},
    }
    result = trigger(home, "rs2gcs_configure", bad)
    assert result.returncode != 0 and "field 'cursor_column'" in result.stdout

    result = trigger(home, "rs2gcs_configure", CONFIGURE)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "public.customers (table)" in result.stdout  # the paged catalog listing
    entry = tenants(home)["acme"]
    assert entry["status"] == "configured" and entry["syncFrequency"] == "hourly"
    assert [t["name"] for t in entry["tables"]] == ["public.customers", "daily_revenue"]
    assert entry["tables"][0] == {"name": "public.customers", **CUSTOMERS_CONTRACT}
    assert entry["tables"][1]["verify"] == "count"

    result = home.run(
        "dags", "test", "rs2gcs_sync__acme", "2026-11-24T00:00:00+00:00", check=False, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:]
    posts = [req for req, _ in receiver.log if req.method == "POST"]
    assert len(posts) == 2
    for request in posts:
        body = request.get_data()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert request.headers["X-Rs2gcs-Signature"] == expected
        payload = json.loads(body)
        assert payload["tenant"] == "acme" and payload["status"] == "success"
        assert payload["manifest"].startswith(f"gs://{BUCKET}/lifecycle/acme/")
        assert set(payload) >= {"table", "bytes", "objects", "data_interval"}
    outcomes = {json.loads(r.get_data())["table"]: json.loads(r.get_data()) for r in posts}
    assert set(outcomes) == {"public.customers", "daily_revenue"}
    assert outcomes["public.customers"]["rows"] == 0 < outcomes["daily_revenue"]["rows"]
    check_the_contract(stack, outcomes)

    for _ in range(2):  # twice in a row, without error
        result = trigger(home, "rs2gcs_disconnect", {"tenant_id": "acme"})
        assert result.returncode == 0, result.stdout[-3000:]
        assert "] Deactivation completed for acme" in result.stdout
    assert "deleted webhook wh_1" in result.stdout or any(r.method == "DELETE" for r, _ in receiver.log)
    assert sum(1 for r, _ in receiver.log if r.method == "DELETE") == 1  # the second run had nothing left
    assert tenants(home)["acme"]["status"] == "disconnected" and "tables" not in tenants(home)["acme"]

    listed = json.loads(home.run("dags", "list", "--local", "-o", "json").stdout.strip().splitlines()[-1])
    dag_ids = {d["dag_id"] for d in listed}
    assert "rs2gcs_sync__acme" not in dag_ids and "rs2gcs_connect" in dag_ids
