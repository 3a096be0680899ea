"""The widget plugin's pure parts and its app without a server: rules, masking, paging, tokens, forms, CSRF.

The app is exercised with FastAPI's TestClient: without credentials every route answers 401 (Airflow's
own ``get_user`` decides), and with a stand-in user the cross-site and form checks answer before
anything is triggered. The real stack (auth managers, runs, catalog) is tests/integration/test_plugin_api.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.datastructures import Headers

from airflow_rs2gcs.hooks.redshift_catalog import (
    InvalidPageToken,
    decode_page_token,
    encode_page_token,
    search_pattern,
)
from airflow_rs2gcs.plugins import actions_api, deps
from airflow_rs2gcs.plugins.app import create_app
from airflow_rs2gcs.plugins.forms import FormError, action_conf
from airflow_rs2gcs.plugins.listing import frequency_of, matching_ids, page_of, tenant_line
from airflow_rs2gcs.plugins.masking import MASK, mask_secrets
from airflow_rs2gcs.plugins.security import CSRF_HEADER, cross_site_refusal
from airflow_rs2gcs.plugins.widget import tenant_status, widget_actions

CONNECTED = {
    "status": "connected",
    "redshift_conn_id": "rs",
    "gcp_conn_id": "gcs",
    "bucket": "acme-exports",
    "webhooks": [{"id": "wh_1", "url": "https://hooks.example.com/x", "secret": "s3cr3t"}],
}
CONFIGURED = {
    **CONNECTED,
    "status": "configured",
    "syncFrequency": "hourly",
    "tables": [{"name": "public.orders"}, {"name": "public.customers"}],
}


# --- the widget's rules ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entry", "actions"),
    [
        (None, ("connect",)),
        ({**CONNECTED, "status": "disconnected"}, ("connect",)),
        (CONNECTED, ("configure", "disconnect")),
        (CONFIGURED, ("configure", "disconnect", "sync")),
        ({**CONFIGURED, "status": "disconnecting"}, ("disconnect",)),
        ({"redshift_conn_id": "rs"}, ("configure", "disconnect")),  # written by hand, no status
        ({"status": "weird"}, ("disconnect",)),
    ],
)
def test_buttons_follow_the_widget(entry, actions):
    assert widget_actions(tenant_status(entry)) == actions


def test_a_tenant_without_entry_is_new():
    assert tenant_status(None) == "new"


# --- masking --------------------------------------------------------------------------------------------
def test_secrets_are_masked_at_any_depth_and_references_are_not():
    entry = {
        **CONNECTED,
        "webhooks": [
            {"id": "wh_1", "url": "https://x.example.com", "secret": "s", "secret_conn_id": "wh_conn"},
            {"id": "wh_2", "url": "https://y.example.com", "secret": None},
        ],
        "extra": {"password": "p", "api_token": "t", "nested": [{"client_secret": "c"}]},
    }
    masked = mask_secrets(entry)
    assert masked["webhooks"][0] == {
        "id": "wh_1",
        "url": "https://x.example.com",
        "secret": MASK,
        "secret_conn_id": "wh_conn",
    }
    assert masked["webhooks"][1]["secret"] is None
    assert masked["extra"] == {"password": MASK, "api_token": MASK, "nested": [{"client_secret": MASK}]}
    assert entry["webhooks"][0]["secret"] == "s"  # a copy, the entry is untouched
    assert "s3cr3t" not in repr(mask_secrets(CONFIGURED))


# --- paging ---------------------------------------------------------------------------------------------
def test_tenant_filter_is_case_insensitive_and_sorted():
    ids = ["beta", "Acme", "acme-eu", "zeta"]
    assert matching_ids(ids, "ACME") == ["Acme", "acme-eu"]
    assert matching_ids(ids) == ["Acme", "acme-eu", "beta", "zeta"]


def test_pages_cover_1000_tenants_exactly_once():
    ids = matching_ids(f"t{i:04d}" for i in range(1000))
    pages = [page_of(ids, offset, 50) for offset in range(0, 1000, 50)]
    assert [t for page in pages for t in page] == ids
    assert page_of(ids, 990, 50) == ids[990:]
    assert page_of(ids, 5000, 50) == []


def test_only_a_configured_tenant_has_a_next_sync():
    import datetime as dt

    soon = dt.datetime(2026, 12, 3, 14, tzinfo=dt.UTC)
    assert tenant_line("acme", CONFIGURED, None, None, soon)["next_sync"] == soon.isoformat()
    # Disconnect deletes the configuration; the sync DAG is gone only at the next parse.
    disconnected = {"source": "redshift_to_gcs", "status": "disconnected"}
    assert tenant_line("acme", disconnected, None, None, soon)["next_sync"] is None
    assert (
        tenant_line("acme", {**CONFIGURED, "status": "disconnecting"}, None, None, soon)["next_sync"] is None
    )


def test_frequency_has_its_label():
    assert frequency_of({"syncFrequency": "hourly"}) == {"value": "hourly", "label": "1 hour"}
    assert frequency_of({"syncFrequency": "30 2 * * *"}) == {
        "value": "30 2 * * *",
        "label": "cron: 30 2 * * *",
    }
    assert frequency_of({}) is None


# --- page tokens and search -----------------------------------------------------------------------------
@pytest.mark.parametrize("key", [("public", "orders"), ("analytics", 'Mixed "Case" Table'), ("ü", "€ 1")])
def test_page_tokens_round_trip_and_are_url_safe(key):
    token = encode_page_token(*key)
    assert decode_page_token(token) == key
    assert all(c.isalnum() or c in "-_" for c in token)


@pytest.mark.parametrize(
    "token", ["not base64!", "bm90IGpzb24", encode_page_token("a", "b")[:-3] + "xyz", "WzFd"]
)
def test_foreign_page_tokens_are_refused(token):
    with pytest.raises(InvalidPageToken):
        decode_page_token(token)


def test_search_text_is_literal_in_ilike():
    assert search_pattern("") == ""
    assert search_pattern("ord") == "%ord%"
    assert search_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


# --- forms ----------------------------------------------------------------------------------------------
def errors_of(action: str, body: Any, stored: Any = None, tenant_id: str = "acme") -> dict[str, str]:
    with pytest.raises(FormError) as caught:
        action_conf(action, tenant_id, body, stored)
    return caught.value.errors


def test_connect_of_a_new_tenant_needs_connections_and_bucket():
    assert set(errors_of("connect", {"bucket": "acme-exports"})) == {"redshift_conn_id", "gcp_conn_id"}
    assert "bucket" in errors_of(
        "connect", {"redshift_conn_id": "r", "gcp_conn_id": "g", "bucket": "Bad Bucket"}
    )
    assert "tenant_id" in errors_of("connect", {}, tenant_id="bad id!")
    assert "surprise" in errors_of("connect", {"surprise": 1})


def test_connect_conf_keeps_masked_secrets_and_clears_emptied_fields():
    body = {
        "prefix": "",
        "webhooks": [{"id": "wh_1", "url": "https://hooks.example.com/x", "secret": MASK}],
    }
    conf = action_conf("connect", "acme", body, {**CONNECTED, "prefix": "old"})
    assert conf["webhooks"][0]["secret"] == "s3cr3t"
    assert conf["clear"] == ["prefix"]
    assert conf["tenant_id"] == "acme" and conf["source"] == "redshift_to_gcs"
    unknown = {"webhooks": [{"id": "wh_9", "url": "https://hooks.example.com/y", "secret": MASK}]}
    assert "webhooks.0.secret" in errors_of("connect", unknown, CONNECTED)
    cleared = action_conf("connect", "acme", {"webhooks": []}, CONNECTED)
    assert cleared["clear"] == ["webhooks"] and "webhooks" not in cleared


def test_configure_conf_puts_tables_then_queries_and_splits_cron():
    body = {
        "tables": [
            "public.orders",
            {"name": 'analytics."Mixed Case"', "mode": "incremental", "cursor_column": "ts"},
        ],
        "queries": [{"name": "daily_revenue", "sql": "select 1 as x"}],
        "syncFrequency": "1 hour",
        "format": "csv",
        "timezone": "Europe/Berlin",
    }
    conf = action_conf("configure", "acme", body, CONNECTED)
    assert [t["name"] for t in conf["tables"]] == ["public.orders", 'analytics."Mixed Case"', "daily_revenue"]
    assert conf["tables"][1]["cursor_column"] == "ts" and conf["tables"][2]["query"] == "select 1 as x"
    assert conf["syncFrequency"] == "hourly" and "cron" not in conf
    assert conf["format"] == "csv" and conf["timezone"] == "Europe/Berlin"
    cron = action_conf("configure", "acme", {**body, "syncFrequency": "30  2 * * *"}, CONNECTED)
    assert cron["cron"] == "30 2 * * *" and "syncFrequency" not in cron


def test_configure_errors_are_per_field():
    body = {
        "tables": ["public.orders", {"name": "public.events", "mode": "incremental"}],
        "queries": [{"name": "bad", "sql": "delete from public.orders"}],
        "syncFrequency": "every tuesday",
        "timezone": "Mars/Olympus",
    }
    errors = errors_of("configure", body, CONNECTED)
    assert "syncFrequency" in errors
    assert "queries.0.sql" in errors and "SELECT" in errors["queries.0.sql"].upper()
    assert "timezone" in errors
    assert any(field.startswith("tables.1") for field in errors), errors
    assert "tables.0.name" in errors_of("configure", {"tables": ['"orders"']}, CONNECTED)
    assert "tables" in errors_of("configure", {"tables": []}, CONNECTED)


def test_sync_and_disconnect_name_only_the_tenants_own():
    assert action_conf("sync", "acme", {}, CONFIGURED) == {
        "source": "redshift_to_gcs",
        "tables": None,
        "full_refresh": False,
    }
    assert action_conf("sync", "acme", {"tables": ["public.orders"], "full_refresh": True}, CONFIGURED)[
        "tables"
    ]
    assert "tables" in errors_of("sync", {"tables": ["public.nope"]}, CONFIGURED)
    assert action_conf("disconnect", "acme", {}, CONFIGURED) == {"tenant_id": "acme", "webhookIds": None}
    assert "webhookIds" in errors_of("disconnect", {"webhookIds": ["wh_9"]}, CONFIGURED)


# --- cross-site -----------------------------------------------------------------------------------------
OWN = {"http://airflow.example.com:8080"}


@pytest.mark.parametrize(
    ("method", "headers", "refused"),
    [
        ("GET", {}, False),
        ("POST", {}, True),
        ("POST", {CSRF_HEADER: "0"}, True),
        ("POST", {CSRF_HEADER: "1"}, False),
        ("POST", {CSRF_HEADER: "1", "Origin": "http://airflow.example.com:8080"}, False),
        ("POST", {CSRF_HEADER: "1", "Origin": "HTTP://Airflow.Example.com:8080"}, False),
        ("POST", {CSRF_HEADER: "1", "Origin": "http://evil.example.com"}, True),
        ("POST", {CSRF_HEADER: "1", "Origin": "http://airflow.example.com:9999"}, True),
        ("POST", {CSRF_HEADER: "1", "Origin": "null"}, True),
    ],
)
def test_cross_site_requests_are_refused(method, headers, refused):
    assert (cross_site_refusal(method, Headers(headers), OWN) is not None) is refused


# --- the app --------------------------------------------------------------------------------------------
ROUTES = [
    ("GET", "/"),
    ("GET", "/static/index.html"),
    ("GET", "/api/v1/meta"),
    ("GET", "/api/v1/tenants"),
    ("GET", "/api/v1/tenants/acme"),
    ("GET", "/api/v1/tenants/acme/catalog"),
    ("GET", "/api/v1/tenants/acme/columns?table=public.orders"),
    ("GET", "/api/v1/tenants/acme/runs"),
    ("GET", "/api/v1/tenants/acme/runs/rs2gcs_connect/r1"),
    ("POST", "/api/v1/tenants/acme/connect"),
    ("POST", "/api/v1/tenants/acme/sync"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_session(method, path):
    client = TestClient(create_app())
    response = client.request(method, path, headers={CSRF_HEADER: "1"}, json={})
    assert response.status_code == 401, response.text
    forged = client.request(method, path, headers={"Authorization": "Bearer not-a-jwt"})
    assert forged.status_code in (401, 503), forged.text  # no auth manager here: never served


def test_without_airflows_security_helpers_every_route_fails_closed(monkeypatch):
    import importlib

    from airflow_rs2gcs.plugins import security

    real_import = importlib.import_module

    def moved(name: str, *args: Any) -> Any:
        if name == "airflow.api_fastapi.core_api.security":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args)

    monkeypatch.setattr(security, "_HELPERS", [])
    monkeypatch.setattr(importlib, "import_module", moved)
    client = TestClient(create_app())
    for method, path in ROUTES:
        response = client.request(method, path, headers={CSRF_HEADER: "1"}, json={})
        assert response.status_code == 503, (method, path, response.text)
        assert "refusing" in response.json()["detail"]


class FakeAccess:
    """A user allowed everything (the unit tests' stand-in for an auth manager decision)."""

    name = "tester"

    def can_act(self, tenant_id: str, action: str) -> bool:
        return True


@pytest.fixture
def signed_in(monkeypatch) -> TestClient:
    app = create_app()

    async def fake_access() -> Any:
        return FakeAccess()

    app.dependency_overrides[deps.get_access] = fake_access
    monkeypatch.setattr(actions_api, "read_tenants", lambda: {"acme": CONFIGURED})
    triggered: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        actions_api, "trigger_run", lambda dag_id, conf, user: triggered.append((dag_id, conf)) or "r1"
    )
    client = TestClient(app, base_url="http://airflow.example.com:8080")
    client.triggered = triggered  # type: ignore[attr-defined]
    return client


def test_the_page_is_served_with_a_strict_content_security_policy(signed_in):
    page = signed_in.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    policy = page.headers["Content-Security-Policy"]
    assert policy == "default-src 'self'; img-src 'self' data:; frame-ancestors 'self'"
    assert "unsafe" not in policy


def test_post_refuses_cross_site_before_anything_else(signed_in):
    assert signed_in.post("/api/v1/tenants/acme/sync", json={}).status_code == 403
    foreign = {CSRF_HEADER: "1", "Origin": "https://evil.example.com"}
    assert signed_in.post("/api/v1/tenants/acme/sync", json={}, headers=foreign).status_code == 403
    assert signed_in.triggered == []  # type: ignore[attr-defined]


def test_post_checks_state_and_form_then_triggers(signed_in):
    own = {CSRF_HEADER: "1", "Origin": "http://airflow.example.com:8080"}
    response = signed_in.post("/api/v1/tenants/acme/sync", json={"full_refresh": True}, headers=own)
    assert response.status_code == 202 and response.json() == {"dag_id": "rs2gcs_sync__acme", "run_id": "r1"}
    assert signed_in.post("/api/v1/tenants/acme/connect", json={}, headers=own).status_code == 409
    bad = signed_in.post("/api/v1/tenants/acme/configure", json={"syncFrequency": "often"}, headers=own)
    assert bad.status_code == 422 and "syncFrequency" in bad.json()["errors"]
    assert signed_in.post("/api/v1/tenants/acme/explode", json={}, headers=own).status_code == 404
    text = signed_in.post(
        "/api/v1/tenants/acme/sync", content=b"{}", headers={**own, "Content-Type": "text/plain"}
    )
    assert text.status_code == 415
    assert [dag_id for dag_id, _ in signed_in.triggered] == ["rs2gcs_sync__acme"]  # type: ignore[attr-defined]


def test_a_grouped_export_task_gives_one_run_page_line_per_table():
    from airflow_rs2gcs.plugins.history import TaskRow
    from airflow_rs2gcs.plugins.outcome import _task_lines

    plan = {
        "large": [{"tables": [{"table": "public.orders"}]}],
        "small": [{"tables": [{"table": "public.a"}, {"table": "public.b"}, {"table": "public.c"}]}],
    }
    failed = TaskRow("sync_small_tables", 0, "failed", 3, "small: public.a, public.b, public.c")
    kept = [{"table": "public.a", "rows": 3, "bytes": 10, "objects": 1, "manifest": "p/a/_manifest.json"}]
    lines = _task_lines(failed, kept, plan, "bucket")
    assert [(line["table"], line["status"], line["rows"]) for line in lines] == [
        ("public.a", "success", 3),
        ("public.b", "failed", None),
        ("public.c", "failed", None),
    ]
    assert lines[0]["manifest"] == "gs://bucket/p/a/_manifest.json"
    running = TaskRow("sync_table", 0, "running", 1, "public.orders")
    assert [line["status"] for line in _task_lines(running, [], plan, "bucket")] == ["running"]
