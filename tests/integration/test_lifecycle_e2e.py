"""Connect -> Configure -> Sync -> Disconnect through ``airflow dags test`` with conf, on real parts.

Real Airflow CLI, PostgreSQL behind the Redshift shim, fake-gcs-server and a real HTTP receiver for
the webhooks (pytest-httpserver): the exact widget messages, the gates, signed deliveries, the
webhook DELETE on disconnect, and the sync DAG gone at the next parse.
"""

from __future__ import annotations

import hashlib
import hmac
import json

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


CONFIGURE = {
    "tenant_id": "acme",
    "tables": ["public.customers", "daily_revenue"],
    "table_options": {"daily_revenue": {"query": REVENUE_QUERY}},
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


def test_full_lifecycle(home, receiver):
    result = trigger(home, "rs2gcs_connect", connect_conf("acme", receiver))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "] Activation successful for redshift_to_gcs" in result.stdout
    assert tenants(home)["acme"]["status"] == "connected"

    result = trigger(home, "rs2gcs_configure", {**CONFIGURE, "tables": [], "table_options": {}})
    assert result.returncode != 0
    assert "field 'tables': select at least one table; readable by connection 'rs2gcs_redshift': " in (
        result.stdout
    )
    assert "public.customers" in result.stdout.split("select at least one table")[1]

    bad = {**CONFIGURE, "table_options": {"daily_revenue": {"query": "delete from public.orders"}}}
    result = trigger(home, "rs2gcs_configure", bad)
    assert result.returncode != 0 and "field 'query' is not allowed" in result.stdout

    bad = {
        **CONFIGURE,
        "table_options": {"public.customers": {"mode": "incremental", "cursor_column": "name"}},
    }
    result = trigger(home, "rs2gcs_configure", bad)
    assert result.returncode != 0 and "field 'cursor_column'" in result.stdout

    result = trigger(home, "rs2gcs_configure", CONFIGURE)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "public.customers (table)" in result.stdout  # the paged catalog listing
    entry = tenants(home)["acme"]
    assert entry["status"] == "configured" and entry["syncFrequency"] == "hourly"
    assert [t["name"] for t in entry["tables"]] == ["public.customers", "daily_revenue"]

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
        assert payload["tenant"] == "acme" and payload["status"] == "success" and payload["rows"] > 0
        assert payload["manifest"].startswith(f"gs://{BUCKET}/lifecycle/acme/")
        assert set(payload) >= {"table", "bytes", "objects", "data_interval"}
    assert {json.loads(r.get_data())["table"] for r in posts} == {"public.customers", "daily_revenue"}

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
