"""The widget plugin's JSON API on the real api-server, scheduler and dag-processor (one stack per module).

What only real services show: ``airflow plugins`` lists the plugin from its entry point; the api-server
mounts it at ``/rs2gcs`` and every route (the page too) answers 401 without an Airflow session; the
simple auth manager's ``viewer`` may look but not press a button; a cross-site POST is refused; an
auth manager with DAG-level grants (``plugin_auth_manager.TenantGrantsAuthManager``, kept in this
folder) confines a user to their tenant; the catalog is paged live from PostgreSQL through the Redshift
shim; and Connect -> Configure -> Sync pressed through the API run as real DAG runs whose messages,
errors and per-table outcomes the API reports.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rs2gcs_devstack.services import AirflowServices
from rs2gcs_devstack.stack import DEFAULT_GCP_CONN_ID, DEFAULT_REDSHIFT_CONN_ID

from airflow_rs2gcs.factory import redshift_pool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

HERE = Path(__file__).parent
API = "/rs2gcs/api/v1"
POST_HEADERS = {"X-Rs2gcs-Request": "1"}
BUCKET = "plugin-flow"
SEEDED = {
    "acme": {
        "status": "connected",
        "redshift_conn_id": DEFAULT_REDSHIFT_CONN_ID,
        "gcp_conn_id": "g",
        "bucket": "acme-x",
    },
    "beta": {
        "status": "connected",
        "redshift_conn_id": DEFAULT_REDSHIFT_CONN_ID,
        "gcp_conn_id": "g",
        "bucket": "beta-x",
    },
}
MAIN_TABLES, VIEWS = 200, 60
MIXED = 'plugcat_main."Mixed Case"'


def catalog_sql(role: str) -> str:
    """200 tables and a quoted-name table in plugcat_main, 60 views in plugcat_views: 261 relations."""
    return f"""
    DROP SCHEMA IF EXISTS plugcat_main CASCADE; DROP SCHEMA IF EXISTS plugcat_views CASCADE;
    CREATE SCHEMA plugcat_main; CREATE SCHEMA plugcat_views;
    DO $$ BEGIN
      FOR i IN 0..{MAIN_TABLES - 1} LOOP
        EXECUTE format('CREATE TABLE plugcat_main.t%s (id int)', lpad(i::text, 3, '0'));
      END LOOP;
      FOR i IN 0..{VIEWS - 1} LOOP
        EXECUTE format('CREATE VIEW plugcat_views.v%s AS SELECT 1 AS x', lpad(i::text, 2, '0'));
      END LOOP;
    END $$;
    CREATE TABLE {MIXED} (id int, label text, updated_at timestamp);
    INSERT INTO {MIXED} VALUES (1, 'a', '2026-01-01'), (2, 'b, "quoted"', '2026-01-02'), (3, NULL, NULL);
    GRANT USAGE ON SCHEMA plugcat_main, plugcat_views TO "{role}";
    GRANT SELECT ON ALL TABLES IN SCHEMA plugcat_main, plugcat_views TO "{role}";
    """


@pytest.fixture(scope="module")
def airflow(stack) -> Iterator[AirflowServices]:
    """One stack: the test auth manager (alice granted acme only), viewer and alice users, the catalog."""
    stack.postgres.psql(catalog_sql(stack.postgres.user), database=stack.postgres.database)
    stack.gcs.create_bucket(BUCKET)
    env = {
        "PYTHONPATH": str(HERE),
        "AIRFLOW__CORE__AUTH_MANAGER": "plugin_auth_manager.TenantGrantsAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer,alice:user",
        "RS2GCS_TEST_TENANT_GRANTS": "alice=acme",
    }
    with AirflowServices(stack, extra_env=env) as services:
        services.set_variable("rs2gcs_tenants", SEEDED)
        services.create_pool(redshift_pool(DEFAULT_REDSHIFT_CONN_ID), 4)
        for dag_id in ("rs2gcs_connect", "rs2gcs_configure", "rs2gcs_disconnect"):
            services.wait_for_dag(dag_id)
        yield services


@pytest.fixture(scope="module")
def passwords(airflow: AirflowServices) -> dict[str, str]:
    """Every user's password (the api-server generated the missing ones into the passwords file)."""
    assert airflow.home is not None
    return json.loads((airflow.home.path / "simple_auth_manager_passwords.json").read_text())


class User:
    """An httpx client signed in as one Airflow user (Bearer token from ``POST /auth/token``)."""

    def __init__(self, airflow: AirflowServices, name: str, password: str) -> None:
        self.token = httpx.post(
            f"{airflow.base_url}/auth/token", json={"username": name, "password": password}, timeout=30
        ).json()["access_token"]
        self.client = httpx.Client(
            base_url=airflow.base_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=120
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(f"{API}{path}", **kwargs)

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.client.post(
            f"{API}{path}", json=body, headers=POST_HEADERS if headers is None else headers
        )

    def ok(self, path: str, **kwargs: Any) -> Any:
        response = self.get(path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def admin(airflow: AirflowServices) -> User:
    return User(airflow, airflow.username, airflow.password)


@pytest.fixture(scope="module")
def viewer(airflow: AirflowServices, passwords: dict[str, str]) -> User:
    return User(airflow, "viewer", passwords["viewer"])


@pytest.fixture(scope="module")
def alice(airflow: AirflowServices, passwords: dict[str, str]) -> User:
    return User(airflow, "alice", passwords["alice"])


ROUTES = [
    ("GET", "/rs2gcs/"),
    ("GET", "/rs2gcs/static/index.html"),
    ("GET", f"{API}/meta"),
    ("GET", f"{API}/tenants"),
    ("GET", f"{API}/tenants/acme"),
    ("GET", f"{API}/tenants/acme/catalog"),
    ("GET", f"{API}/tenants/acme/columns?table=public.orders"),
    ("GET", f"{API}/tenants/acme/runs"),
    ("GET", f"{API}/tenants/acme/runs/rs2gcs_connect/some_run"),
    *[("POST", f"{API}/tenants/acme/{action}") for action in ("connect", "configure", "sync", "disconnect")],
]


def test_airflow_plugins_lists_the_plugin(airflow: AirflowServices):
    assert airflow.home is not None
    listed = airflow.home.run("plugins").stdout
    assert "rs2gcs" in listed and "Redshift → GCS" in listed, listed


def test_every_route_and_the_page_answer_401_without_a_session(airflow: AirflowServices):
    anonymous = httpx.Client(base_url=airflow.base_url, timeout=30)
    for method, path in ROUTES:
        for headers in ({}, {"Authorization": "Bearer forged"}, {"Cookie": "_token=forged"}):
            response = anonymous.request(method, path, headers={**POST_HEADERS, **headers}, json={})
            assert response.status_code == 401, (method, path, headers, response.text)


def test_the_page_is_served_to_a_session_and_listed_in_the_navigation(airflow: AirflowServices, admin: User):
    browser = httpx.Client(base_url=airflow.base_url, cookies={"_token": admin.token}, timeout=30)
    page = browser.get("/rs2gcs/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert browser.get(f"{API}/tenants").status_code == 200  # the cookie alone authenticates
    assert browser.get("/rs2gcs/static/..%2Fplugin.py").status_code == 404
    plugins = admin.client.get("/api/v2/plugins").json()["plugins"]
    views = [v for p in plugins if p["name"] == "rs2gcs" for v in p["external_views"]]
    assert views and views[0]["href"] == "rs2gcs/" and views[0]["name"] == "Redshift → GCS"


def test_viewer_reads_but_every_post_is_forbidden(viewer: User):
    listing = viewer.ok("/tenants")
    assert {t["tenant_id"] for t in listing["tenants"]} >= {"acme", "beta"}
    assert viewer.ok("/tenants/acme")["actions"] == []
    assert viewer.ok("/meta")["user"] == {"name": "viewer", "can_post": False}
    for action, body in [
        ("connect", {}),
        ("configure", {"tables": ["public.orders"]}),
        ("sync", {}),
        ("disconnect", {}),
    ]:
        response = viewer.post(f"/tenants/acme/{action}", body)
        assert response.status_code == 403, (action, response.text)


def test_cross_site_posts_are_refused(admin: User, airflow: AirflowServices):
    before = len(airflow.runs("rs2gcs_disconnect"))
    assert admin.post("/tenants/beta/disconnect", {}, headers={}).status_code == 403
    foreign = {**POST_HEADERS, "Origin": "https://evil.example.com"}
    assert admin.post("/tenants/beta/disconnect", {}, headers=foreign).status_code == 403
    assert len(airflow.runs("rs2gcs_disconnect")) == before


def test_a_user_granted_one_tenant_sees_and_manages_only_that_tenant(alice: User):
    listing = alice.ok("/tenants")
    assert [t["tenant_id"] for t in listing["tenants"]] == ["acme"] and listing["total"] == 1
    assert alice.ok("/tenants/acme")["actions"] == ["configure", "disconnect"]
    assert alice.get("/tenants/beta").status_code == 403
    assert alice.get("/tenants/beta/catalog").status_code == 403
    assert alice.get("/tenants/beta/runs").status_code == 403
    assert alice.post("/tenants/beta/disconnect", {}).status_code == 403
    assert alice.post("/tenants/newco/connect", {"bucket": "newco-x"}).status_code == 403


def test_catalog_pages_live_with_search_and_kind(admin: User):
    seen, token, pages = [], None, 0
    while True:
        params = {"q": "plugcat", "page_size": 100, **({"page_token": token} if token else {})}
        page = admin.ok("/tenants/acme/catalog", params=params)
        assert page["total"] == MAIN_TABLES + VIEWS + 1
        seen += page["relations"]
        pages, token = pages + 1, page["next_page_token"]
        if token is None:
            break
    names = [r["qualified_name"] for r in seen]
    assert pages == 3 and len(names) == len(set(names)) == MAIN_TABLES + VIEWS + 1
    assert [(r["schema"], r["name"]) for r in seen] == sorted((r["schema"], r["name"]) for r in seen)
    views = admin.ok("/tenants/acme/catalog", params={"q": "plugcat", "kind": "view", "page_size": 100})
    assert views["total"] == VIEWS and {r["kind"] for r in views["relations"]} == {"view"}
    mixed = admin.ok("/tenants/acme/catalog", params={"q": "mixed case"})["relations"]
    assert [r["qualified_name"] for r in mixed] == [MIXED]
    columns = admin.ok("/tenants/acme/columns", params={"table": MIXED})["columns"]
    assert [(c["name"], c["cursor_candidate"]) for c in columns] == [
        ("id", False),
        ("label", False),
        ("updated_at", True),
    ]
    assert admin.get("/tenants/acme/catalog", params={"page_token": "junk!"}).status_code == 422
    assert admin.get("/tenants/acme/columns", params={"table": "plugcat_main.nope"}).status_code == 404


def follow(user: User, tenant_id: str, started: dict[str, str], timeout: float = 240) -> dict[str, Any]:
    """Poll the run the way the page does until it finishes."""
    path = f"/tenants/{tenant_id}/runs/{started['dag_id']}/{started['run_id']}"
    deadline = time.monotonic() + timeout
    while True:
        run = user.ok(path)
        if run["state"] in ("success", "failed") or time.monotonic() > deadline:
            return run
        time.sleep(1)


def press(user: User, tenant_id: str, action: str, body: dict[str, Any]) -> dict[str, str]:
    response = user.post(f"/tenants/{tenant_id}/{action}", body)
    assert response.status_code == 202, response.text
    return response.json()


def test_connect_configure_sync_through_the_api(admin: User, airflow: AirflowServices):
    assert admin.ok("/tenants/flow") == {
        "tenant_id": "flow",
        "status": "new",
        "entry": None,
        "actions": ["connect"],
        "sync_dag_id": "rs2gcs_sync__flow",
    }
    meta = admin.ok("/meta")
    assert DEFAULT_REDSHIFT_CONN_ID in meta["connections"]["redshift"]
    assert DEFAULT_GCP_CONN_ID in meta["connections"]["gcp"]
    bad = admin.post("/tenants/flow/connect", {"bucket": BUCKET})
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"redshift_conn_id", "gcp_conn_id"}

    connect = {
        "redshift_conn_id": DEFAULT_REDSHIFT_CONN_ID,
        "gcp_conn_id": DEFAULT_GCP_CONN_ID,
        "bucket": BUCKET,
        "prefix": "plugin",
        "webhooks": [{"id": "wh_1", "url": "https://hooks.example.com/x", "secret": "s3cr3t"}],
    }
    started = press(admin, "flow", "connect", connect)
    run = follow(admin, "flow", started)
    assert run["state"] == "success" and run["message"] == "Activation successful for redshift_to_gcs", run
    as_airflow_shows_it = airflow.api.get(f"dags/rs2gcs_connect/dagRuns/{started['run_id']}")
    assert as_airflow_shows_it["triggering_user_name"] == airflow.username
    assert as_airflow_shows_it["run_type"] == "manual" and as_airflow_shows_it["triggered_by"] == "ui"
    tenant = admin.ok("/tenants/flow")
    assert tenant["status"] == "connected" and tenant["actions"] == ["configure", "disconnect"]
    assert tenant["entry"]["webhooks"][0]["secret"] == "***"

    missing = follow(admin, "flow", press(admin, "flow", "configure", {"tables": ["plugcat_main.nope"]}))
    assert missing["state"] == "failed" and "plugcat_main.nope" in missing["error"], missing
    assert "no such table" in missing["error"], missing

    # The picker's name goes into Configure as it is: the quoted name round-trips.
    (picked,) = admin.ok("/tenants/flow/catalog", params={"q": "mixed case"})["relations"]
    configure = {
        "tables": [{"name": picked["qualified_name"], "mode": "incremental", "cursor_column": "updated_at"}],
        "queries": [{"name": "mixed_labels", "sql": f"select id, label from {MIXED}"}],
        "syncFrequency": "1 hour",
        "timezone": "Europe/Berlin",
    }
    run = follow(admin, "flow", press(admin, "flow", "configure", configure))
    assert run["state"] == "success" and run["message"].startswith("Configuration saved for flow"), run
    tenant = admin.ok("/tenants/flow")
    assert tenant["status"] == "configured" and tenant["actions"] == ["configure", "disconnect", "sync"]
    assert [t["name"] for t in tenant["entry"]["tables"]] == [MIXED, "mixed_labels"]

    started = press_when_parsed(admin, "flow", "sync", {"full_refresh": True})
    run = follow(admin, "flow", started)
    assert run["state"] == "success", run
    assert run["message"].startswith("Synced 2 table(s): 6 rows, "), run
    by_table = {t["table"]: t for t in run["tables"]}
    assert set(by_table) == {MIXED, "mixed_labels"}
    assert all(t["status"] == "success" and t["rows"] == 3 and t["objects"] >= 1 for t in by_table.values())
    assert all(t["manifest"].startswith(f"gs://{BUCKET}/plugin/") for t in by_table.values())

    # The hourly schedule may have added a scheduled run beside ours (catchup off: the latest interval).
    history = {r["run_id"]: r for r in admin.ok("/tenants/flow/runs")["runs"]}
    ours = history[started["run_id"]]
    assert ours["rows"] == 6 and ours["tables"] == 2 and ours["duration_seconds"] > 0
    line = next(t for t in admin.ok("/tenants", params={"q": "flow"})["tenants"] if t["tenant_id"] == "flow")
    assert line["sync_frequency"] == {"value": "hourly", "label": "1 hour"} and line["table_count"] == 2
    assert line["last_sync"]["state"] == "success" and line["last_sync"]["rows"] == 6
    assert line["next_sync"] is not None


def press_when_parsed(user: User, tenant_id: str, action: str, body: dict[str, Any]) -> dict[str, str]:
    """Press a button whose DAG the dag-processor creates within a parse interval (409 until then)."""
    deadline = time.monotonic() + 120
    while True:
        response = user.post(f"/tenants/{tenant_id}/{action}", body)
        if response.status_code != 409 or time.monotonic() > deadline:
            assert response.status_code == 202, response.text
            return response.json()
        time.sleep(2)
