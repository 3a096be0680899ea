"""Issue 13's lifecycle rules at unit level: text stays text, exact tenants, partial updates with
confirmation, honest webhook deletion, the sync DAG's ``source`` Param.

The operators run in-process against an in-memory stand-in for the ``rs2gcs_tenants`` Variable (the
real store needs a task's supervisor) and with Connect's Redshift/bucket checks stubbed out; webhook
registrations are a real HTTP server (so this file is in tests/integration).
``test_lifecycle_honesty_e2e.py`` shows the same through real control-DAG runs on the local stack.
"""

from __future__ import annotations

import copy
import json
import socket
import time
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from airflow_rs2gcs import store
from airflow_rs2gcs.control_dags import ParamValue, build_control_dags
from airflow_rs2gcs.factory import build_dags
from airflow_rs2gcs.operators import configure, connect, disconnect, lifecycle
from airflow_rs2gcs.operators.configure import ConfigureTenantOperator
from airflow_rs2gcs.operators.connect import ActivateTenantOperator
from airflow_rs2gcs.operators.disconnect import DeactivateTenantOperator
from airflow_rs2gcs.operators.lifecycle import LifecycleError, checked_tenant_id, given_text
from airflow_rs2gcs.planning import plan_tables
from airflow_rs2gcs.tenants import Webhook, closest_ids, parse_tenant
from airflow_rs2gcs.webhooks import delete_registration

LITERAL_IDS = ["123", "007", "1_000", "0x1f", "True", "None", "1e3"]
FAST = {"webhook_delete_attempts": 3, "webhook_delete_backoff": 0.05, "webhook_delete_deadline": 2.0}
CONNECTED = {
    "source": "redshift_to_gcs",
    "status": "connected",
    "redshift_conn_id": "rs",
    "gcp_conn_id": "gcs",
    "bucket": "acme-exports",
    "prefix": "lifecycle",
    "webhooks": [],
}
CONFIGURED = {
    **CONNECTED,
    "status": "configured",
    "syncFrequency": "hourly",
    "timezone": "Europe/Berlin",
    "format": "csv",
    "tables": [
        {"name": "public.customers"},
        {"name": "daily", "query": "select 1 as x"},
        {"name": "public.orders", "mode": "incremental", "cursor_column": "updated_at"},
    ],
}


class MemoryStore:
    """The tenants Variable in memory, patched in where the operators read and write it."""

    def __init__(self, tenants: dict[str, Any]) -> None:
        self.tenants = tenants
        self.writes = 0

    def read(self) -> dict[str, Any]:
        return copy.deepcopy(self.tenants)

    def update(self, tenant_id: str, change: Any) -> None:
        assert isinstance(tenant_id, str)
        updated = change(copy.deepcopy(self.tenants.get(tenant_id)))
        self.tenants[tenant_id] = updated
        self.writes += 1


@pytest.fixture
def tenants(monkeypatch):
    memory = MemoryStore({})
    # Connect reads the store itself; Configure and Disconnect through lifecycle.existing_entry.
    monkeypatch.setattr(connect, "all_entries", memory.read)
    monkeypatch.setattr(lifecycle, "all_entries", memory.read)
    for module in (connect, configure, disconnect):  # each operator's module writes the store
        monkeypatch.setattr(module, "update_tenant", memory.update)
    monkeypatch.setattr(ActivateTenantOperator, "_check_redshift", lambda self, *a: None)
    monkeypatch.setattr(ActivateTenantOperator, "_check_bucket", lambda self, *a: None)
    return memory


def activate(**fields: Any) -> str:
    return ActivateTenantOperator(task_id="activate", **FAST, **fields).execute({})  # type: ignore[arg-type]


def deactivate(**fields: Any) -> str:
    return DeactivateTenantOperator(task_id="deactivate", **FAST, **fields).execute({})  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- 1. text stays text -------------------------------------------------------------------------------------


@pytest.mark.parametrize("tenant_id", LITERAL_IDS)
def test_control_dags_hand_the_params_to_the_operators_as_given(tenant_id):
    dags = build_control_dags()
    assert not any(dag.render_template_as_native_obj for dag in dags.values())
    params = {
        "tenant_id": tenant_id,
        "source": "redshift_to_gcs",
        "redshift_conn_id": "42",
        "gcp_conn_id": "None",
        "bucket": "2025",
        "prefix": "2024",
        "webhooks": [{"id": "1", "url": "https://x.example"}],
        "clear": None,
        "confirm_output_change": False,
    }
    task = dags["rs2gcs_connect"].get_task("activate")
    task.render_template_fields({"params": params})  # type: ignore[arg-type]
    rendered = {field: getattr(task, field) for field in task.template_fields}
    assert rendered == {**params, "clear": None}
    assert all(type(rendered[f]) is str for f in ("tenant_id", "redshift_conn_id", "bucket", "prefix"))

    configure = dags["rs2gcs_configure"].get_task("configure")
    configure.render_template_fields(
        {
            "params": {
                "tenant_id": tenant_id,
                "tables": ["public.x", {"name": "y"}],
                "cron": None,
                "syncFrequency": "daily",
            }
        }  # type: ignore[arg-type]
    )
    assert configure.tenant_id == tenant_id and configure.tables == ["public.x", {"name": "y"}]
    assert configure.sync_frequency == "daily"  # cron empty: the dropdown's value


def test_param_value_falls_back_only_when_empty():
    value = ParamValue("cron", or_else="syncFrequency")
    assert value({"params": {"cron": "0 5 * * *", "syncFrequency": "daily"}}) == "0 5 * * *"
    assert value({"params": {"cron": "", "syncFrequency": "daily"}}) == "daily"
    assert ParamValue("tenant_id")({"params": {"tenant_id": "None"}}) == "None"


@pytest.mark.parametrize("value", [123, 7, True, None, 1000.0, 31])
def test_a_number_bool_or_none_where_text_belongs_is_refused_never_converted(value):
    with pytest.raises(LifecycleError, match=r"not text.*render_template_as_native_obj"):
        checked_tenant_id(value)
    if value is not None:  # a None prefix means "left empty"
        with pytest.raises(LifecycleError, match=r"field 'prefix' must be text"):
            given_text("acme", "prefix", value)
    with pytest.raises(TypeError, match="not text"):
        store.update_tenant(value, lambda entry: entry)  # type: ignore[arg-type]


def test_literal_looking_ids_connect_as_themselves(tenants):
    for tenant_id in LITERAL_IDS:
        activate(tenant_id=tenant_id, redshift_conn_id="42", gcp_conn_id="gcs", bucket="2025", prefix="2024")
    assert list(tenants.tenants) == LITERAL_IDS
    assert all(tenants.tenants[t]["prefix"] == "2024" for t in LITERAL_IDS)


# --- 2. exact tenants ---------------------------------------------------------------------------------------


def test_closest_ids():
    known = ["acme", "globex", "ACME-eu", "initech"]
    assert closest_ids("acmee", known)[0] == "acme"
    assert closest_ids("Acme", known)[0] == "acme"
    assert closest_ids("zzz", known) == []
    assert "acme" not in closest_ids("acme", known)


def test_configure_and_disconnect_of_a_tenant_with_no_entry_name_the_closest_and_write_nothing(tenants):
    tenants.tenants.update({"acme": dict(CONFIGURED), "globex": dict(CONNECTED)})
    before = copy.deepcopy(tenants.tenants)
    with pytest.raises(LifecycleError, match=r"no entry 'acmee'; closest existing ids: 'acme'"):
        ConfigureTenantOperator(task_id="c", tenant_id="acmee", tables=["public.x"]).execute({})  # type: ignore[arg-type]
    with pytest.raises(LifecycleError, match=r"'acmee' has no entry.*closest existing ids: 'acme'.*Nothing"):
        deactivate(tenant_id="acmee")
    with pytest.raises(LifecycleError, match=r"no existing id is close; existing ids: 'acme', 'globex'"):
        deactivate(tenant_id="zzz")
    assert tenants.tenants == before and tenants.writes == 0


def test_connect_logs_whether_it_creates_or_reconnects(tenants, capsys):
    activate(tenant_id="acme", redshift_conn_id="rs", gcp_conn_id="gcs", bucket="acme-exports")
    activate(tenant_id="acmee", redshift_conn_id="rs", gcp_conn_id="gcs", bucket="acme-exports")
    activate(tenant_id="acme")
    logged = capsys.readouterr().out  # the task logger writes to stdout
    assert "Connect creates tenant acme (it has no entry yet)" in logged
    assert "new tenant 'acmee' is close to existing tenant(s) 'acme'" in logged
    assert "Connect reconnects tenant acme (status connected)" in logged


# --- 3. partial updates -------------------------------------------------------------------------------------


def test_reconnect_keeps_every_field_it_was_not_given(tenants):
    before = {**CONFIGURED, "webhooks": [{"id": "wh_1", "url": "https://h.example/x"}]}
    tenants.tenants["acme"] = copy.deepcopy(before)
    activate(tenant_id="acme", source="redshift_to_gcs", prefix="", webhooks=[], clear=None)
    after = tenants.tenants["acme"]
    assert after.pop("connected_at") and after == before


def test_a_new_tenant_needs_its_connection_ids_and_bucket(tenants):
    with pytest.raises(LifecycleError, match=r"'gcp_conn_id', 'bucket' required to connect a new tenant"):
        activate(tenant_id="acme", redshift_conn_id="rs")
    assert tenants.writes == 0


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"bucket": "elsewhere"}, "bucket 'acme-exports' -> 'elsewhere'"),
        ({"prefix": "2024"}, "prefix 'lifecycle' -> '2024'"),
        ({"clear": ["prefix"]}, "prefix 'lifecycle' -> (none)"),
    ],
)
def test_moving_a_configured_tenants_output_needs_confirmation(tenants, fields, shown):
    tenants.tenants["acme"] = dict(CONFIGURED)
    with pytest.raises(LifecycleError) as refused:
        activate(tenant_id="acme", **fields)
    message = str(refused.value)
    assert "tenant 'acme' is configured" in message and shown in message
    assert "confirm_output_change: true" in message and "Nothing was changed" in message
    assert tenants.writes == 0
    activate(tenant_id="acme", confirm_output_change=True, **fields)
    assert tenants.tenants["acme"]["status"] == "configured"


def test_a_connected_tenant_moves_without_confirmation_and_clearing_is_explicit(tenants):
    tenants.tenants["acme"] = dict(CONNECTED)
    activate(tenant_id="acme", bucket="elsewhere")
    assert (
        tenants.tenants["acme"]["bucket"] == "elsewhere" and tenants.tenants["acme"]["prefix"] == "lifecycle"
    )
    activate(tenant_id="acme", clear=["prefix"])
    assert tenants.tenants["acme"]["prefix"] == ""
    with pytest.raises(LifecycleError, match=r"'clear' names \['prefix'\], which this run also sets"):
        activate(tenant_id="acme", prefix="x", clear=["prefix"])
    with pytest.raises(LifecycleError, match=r"\['bucket'\] cannot be cleared"):
        activate(tenant_id="acme", clear=["bucket"])


def test_a_dropped_webhook_is_deleted_first_and_a_failure_writes_nothing(tenants, httpserver: HTTPServer):
    httpserver.expect_request("/reg/ok", method="DELETE").respond_with_data("", status=204)
    httpserver.expect_request("/reg/bad", method="DELETE").respond_with_data("", status=503)
    ok = {"id": "ok", "url": "https://h.example/x", "registration_url": httpserver.url_for("/reg/ok")}
    bad = {"id": "bad", "url": "https://h.example/x", "registration_url": httpserver.url_for("/reg/bad")}
    keep = {"id": "keep", "url": "https://h.example/y"}
    tenants.tenants["acme"] = {**CONNECTED, "webhooks": [ok, bad, keep]}

    with pytest.raises(
        LifecycleError, match=r"webhook bad: DELETE .* HTTP 503 after 3 attempts.*Nothing was"
    ):
        activate(tenant_id="acme", webhooks=[keep])
    assert tenants.writes == 0 and tenants.tenants["acme"]["webhooks"] == [ok, bad, keep]

    activate(tenant_id="acme", webhooks=[bad, keep])  # drops "ok" only
    assert tenants.tenants["acme"]["webhooks"] == [bad, keep]
    deletes = [r.path for r, _ in httpserver.log if r.method == "DELETE"]
    # "ok" was deleted by the failed run too (its record stayed): deleting again converges (404 = gone).
    assert deletes.count("/reg/ok") == 2 and deletes.count("/reg/bad") == 3

    moved = {**keep, "registration_url": httpserver.url_for("/reg/ok")}
    tenants.tenants["acme"]["webhooks"] = [{**keep, "registration_url": httpserver.url_for("/reg/ok")}]
    activate(tenant_id="acme", webhooks=[{**moved, "registration_url": "https://new.example/reg"}])
    deletes = [r.path for r, _ in httpserver.log if r.method == "DELETE"]
    assert deletes.count("/reg/ok") == 3  # a changed registration_url drops the old registration


def test_connect_refuses_a_tenant_that_is_still_disconnecting(tenants):
    tenants.tenants["acme"] = {
        **CONFIGURED,
        "status": "disconnecting",
        "webhooks": [{"id": "w", "url": "https://x.example"}],
    }
    with pytest.raises(
        LifecycleError, match=r"is disconnecting.*\['w'\].*Run rs2gcs_disconnect for it again"
    ):
        activate(tenant_id="acme")


def selection(stored: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
    operator = ConfigureTenantOperator(task_id="c", tenant_id="acme", **fields)
    return operator._selection("acme", stored)


def test_configure_takes_names_and_table_objects_and_keeps_stored_options():
    names = selection(CONFIGURED, tables=["public.customers", "daily", "public.products"])
    assert names == [
        {"name": "public.customers"},
        {"name": "daily", "query": "select 1 as x"},
        {"name": "public.products"},
    ]
    replayed = selection(CONFIGURED, tables=copy.deepcopy(CONFIGURED["tables"]))
    assert replayed == CONFIGURED["tables"]
    mixed = selection(
        CONFIGURED, tables=[{"name": "public.orders", "mode": "full", "cursor_column": None}, "daily"]
    )
    assert mixed == [{"name": "public.orders", "mode": "full"}, {"name": "daily", "query": "select 1 as x"}]
    kept = selection(CONFIGURED, table_options={"public.customers": {"fetch_method": "driver"}})
    assert [t["name"] for t in kept] == [t["name"] for t in CONFIGURED["tables"]]
    assert kept[0] == {"name": "public.customers", "fetch_method": "driver"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tables": [5]}, r"field 'tables.0': 5 is neither a table name nor a table object"),
        ({"tables": [{"mode": "full"}]}, r"field 'tables.0'"),
        (
            {"table_options": {"public.nope": {}}},
            r"table_options names tables not selected: \['public.nope'\]",
        ),
        (
            {
                "tables": [{"name": "daily", "query": "select 2"}],
                "table_options": {"daily": {"query": "select 3"}},
            },
            r"\['query'\] given differently",
        ),
    ],
)
def test_configure_refuses_unclear_table_input(fields, message):
    with pytest.raises(LifecycleError, match=message):
        selection(CONFIGURED, **fields)


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"timezone": "UTC"}, "timezone 'Europe/Berlin' -> 'UTC'"),
        ({"export_format": "parquet"}, "format 'csv' -> 'parquet'"),
    ],
)
def test_changing_a_configured_tenants_format_or_time_zone_needs_confirmation(tenants, fields, shown):
    tenants.tenants["acme"] = dict(CONFIGURED)
    operator = ConfigureTenantOperator(task_id="c", tenant_id="acme", **fields)
    with pytest.raises(LifecycleError, match="confirm_output_change") as refused:
        operator.execute({})  # type: ignore[arg-type]
    assert shown in str(refused.value) and tenants.writes == 0


def test_configure_settings_keep_what_is_stored_and_default_only_the_first_time():
    stored = ConfigureTenantOperator(task_id="c", tenant_id="acme")._settings("acme", CONFIGURED)
    assert stored == {"syncFrequency": "hourly", "format": "csv", "timezone": "Europe/Berlin"}
    first = ConfigureTenantOperator(task_id="c", tenant_id="acme")._settings("acme", CONNECTED)
    assert first == {"syncFrequency": "daily", "format": "parquet", "timezone": "UTC"}


# --- 4. honest webhook deletion -------------------------------------------------------------------------


def test_delete_retries_5xx_and_counts_404_and_410_as_deleted(httpserver: HTTPServer):
    answers = iter([500, 502, 204])
    httpserver.expect_request("/flaky", method="DELETE").respond_with_handler(
        lambda r: Response("", next(answers))
    )
    httpserver.expect_request("/gone", method="DELETE").respond_with_data("", status=404)
    httpserver.expect_request("/went", method="DELETE").respond_with_data("", status=410)
    httpserver.expect_request("/denied", method="DELETE").respond_with_data("", status=403)

    def delete(path: str):
        hook = Webhook(id=path.strip("/"), url="https://x.example", registration_url=httpserver.url_for(path))
        return delete_registration(hook, attempts=4, first_backoff=0.05)

    flaky, gone, went, denied = (delete(p) for p in ("/flaky", "/gone", "/went", "/denied"))
    assert flaky.deleted and flaky.attempts == 3 and flaky.status == 204
    assert gone.deleted and went.deleted and gone.attempts == went.attempts == 1
    assert "(already gone)" in gone.describe()
    assert not denied.deleted and denied.attempts == 1  # a 4xx other than 404/410 is final
    assert delete_registration(Webhook(id="local", url="https://x.example")).deleted  # nothing remote


def test_delete_of_a_down_or_failing_endpoint_is_bounded_and_reported(httpserver: HTTPServer):
    httpserver.expect_request("/broken", method="DELETE").respond_with_data("", status=500)
    down = Webhook(id="down", url="https://x.example", registration_url=f"http://127.0.0.1:{closed_port()}/r")
    broken = Webhook(id="broken", url="https://x.example", registration_url=httpserver.url_for("/broken"))
    started = time.monotonic()
    outcomes = [
        delete_registration(w, attempts=4, first_backoff=0.1, deadline_seconds=2) for w in (down, broken)
    ]
    assert time.monotonic() - started < 3
    assert not any(o.deleted for o in outcomes)
    assert outcomes[0].attempts == 4 and "ConnectionError" in outcomes[0].describe()
    assert outcomes[1].attempts == 4 and "HTTP 500 after 4 attempts" in outcomes[1].describe()
    slow = delete_registration(broken, attempts=100, first_backoff=0.2, deadline_seconds=1)
    assert 2 <= slow.attempts <= 4  # the deadline bounds it, not the attempts


def test_disconnect_keeps_what_it_could_not_delete_and_a_rerun_finishes(tenants, httpserver: HTTPServer):
    state = {"broken": 500}
    httpserver.expect_request("/reg/ok", method="DELETE").respond_with_data("", status=204)
    httpserver.expect_request("/reg/broken", method="DELETE").respond_with_handler(
        lambda r: Response("", state["broken"])
    )
    ok = {"id": "ok", "url": "https://h.example/x", "registration_url": httpserver.url_for("/reg/ok")}
    broken = {
        "id": "broken",
        "url": "https://h.example/x",
        "secret": "whsec-not-kept",
        "registration_url": httpserver.url_for("/reg/broken"),
    }
    tenants.tenants["acme"] = {**CONFIGURED, "webhooks": [ok, broken]}

    with pytest.raises(LifecycleError, match=r"not complete.*webhook broken: DELETE .* HTTP 500") as failed:
        deactivate(tenant_id="acme")
    assert "Deactivation completed" not in str(failed.value)
    entry = tenants.tenants["acme"]
    assert entry["status"] == "disconnecting" and entry["webhooks"] == [broken] and entry["disconnecting_at"]
    assert entry["tables"] == CONFIGURED["tables"]
    assert build_dags({"acme": entry}) == {}  # valid, and no sync DAG

    state["broken"] = 204
    assert deactivate(tenant_id="acme") == "Deactivation completed for acme"
    assert tenants.tenants["acme"]["status"] == "disconnected" and "webhooks" not in tenants.tenants["acme"]
    # What it was connected with, as before the first run deleted anything, and never a secret.
    last = {
        "redshift_conn_id": "rs",
        "gcp_conn_id": "gcs",
        "bucket": "acme-exports",
        "prefix": "lifecycle",
        "webhooks": [ok, {**{k: v for k, v in broken.items() if k != "secret"}, "signed": True}],
    }
    assert tenants.tenants["acme"]["last_connection"] == last
    assert "whsec-not-kept" not in json.dumps(tenants.tenants["acme"])
    assert parse_tenant("acme", tenants.tenants["acme"]).last_connection is not None  # part of the contract
    assert deactivate(tenant_id="acme") == "Deactivation completed for acme"  # twice in a row
    assert tenants.tenants["acme"]["last_connection"] == last

    # Connect takes only what it is given: the kept settings prefill the page's form, nothing else.
    with pytest.raises(LifecycleError, match=r"'redshift_conn_id', 'gcp_conn_id', 'bucket' required"):
        activate(tenant_id="acme")
    activate(tenant_id="acme", redshift_conn_id="rs", gcp_conn_id="gcs", bucket="acme-exports")
    assert "last_connection" not in tenants.tenants["acme"] and tenants.tenants["acme"]["webhooks"] == []


def test_disconnect_with_webhook_ids_deletes_only_those(tenants, httpserver: HTTPServer):
    httpserver.expect_request("/reg/a", method="DELETE").respond_with_data("", status=204)
    a = {"id": "a", "url": "https://h.example/x", "registration_url": httpserver.url_for("/reg/a")}
    b = {"id": "b", "url": "https://h.example/x"}
    tenants.tenants["acme"] = {**CONFIGURED, "webhooks": [a, b]}
    with pytest.raises(
        LifecycleError, match=r"\['zz'\] are not webhooks of this tenant; its webhooks are \['a', 'b'\]"
    ):
        deactivate(tenant_id="acme", webhook_ids=["a", "zz"])
    assert tenants.writes == 0 and not httpserver.log

    message = deactivate(tenant_id="acme", webhook_ids=["a"])
    assert message == "Deleted webhook(s) a of tenant acme; it stays configured with webhook(s) ['b']"
    assert tenants.tenants["acme"]["status"] == "configured" and tenants.tenants["acme"]["webhooks"] == [b]

    tenants.tenants["acme"]["status"] = "disconnecting"  # the last pending webhook finishes a disconnect
    assert deactivate(tenant_id="acme", webhook_ids=["b"]) == "Deactivation completed for acme"
    assert tenants.tenants["acme"]["status"] == "disconnected"


def test_the_disconnecting_status_is_part_of_the_contract():
    tenant = parse_tenant("acme", {**CONFIGURED, "status": "disconnecting", "disconnecting_at": "2026-01-01"})
    assert tenant.is_complete and not tenant.is_ready


# --- 7. the widget's sync payload ---------------------------------------------------------------------------


def test_sync_dags_take_the_widget_source_and_refuse_any_other():
    dag = build_dags({"acme": CONFIGURED})["rs2gcs_sync__acme"]
    source = dag.params.get_param("source")
    assert source.value == "redshift_to_gcs" and source.schema["enum"] == ["redshift_to_gcs"]
    tenant = parse_tenant("acme", CONFIGURED)
    assert plan_tables(tenant, {"source": "redshift_to_gcs"}, None, None)
    with pytest.raises(ValueError, match=r"param 'source' is 's3_to_gcs'; allowed: 'redshift_to_gcs'"):
        plan_tables(tenant, {"source": "s3_to_gcs"}, None, None)
