"""The factory is pure and isolating: right DAGs for ready tenants, placeholders for broken ones."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.serialization.encoders import coerce_to_core_timetable
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_rs2gcs.factory import build_dags, sync_dag_id
from airflow_rs2gcs.schedules import cron_for

GOOD = {
    "redshift_conn_id": "rs",
    "gcp_conn_id": "gcs",
    "bucket": "acme-exports",
    "prefix": "redshift",
    "syncFrequency": "hourly",
    "timezone": "Europe/Berlin",
    "tables": [
        {"name": "public.orders", "mode": "incremental", "cursor_column": "updated_at"},
        {"name": "public.customers", "fetch_method": "driver"},
        {"name": "daily_revenue", "query": "select 1 as x"},
    ],
}


def test_ready_tenant_gets_a_scheduled_unpaused_sync_dag():
    dag = build_dags({"acme": GOOD})["rs2gcs_sync__acme"]
    timetable = coerce_to_core_timetable(dag.timetable)
    assert timetable.summary == cron_for("acme", "hourly")
    assert isinstance(timetable, CronDataIntervalTimetable)
    assert str(dag.timezone.name) == "Europe/Berlin"
    assert dag.is_paused_upon_creation is False and dag.catchup is False
    assert {"rs2gcs", "tenant:acme"} <= set(dag.tags)
    assert dag.default_args["owner"] == "rs2gcs"
    assert {"plan", "small_table_groups", "sync_table", "sync_small_tables", "summary"} == set(dag.task_ids)
    for fragment in ["public.orders", "daily_revenue", "Europe/Berlin", "gs://acme-exports/redshift/acme/"]:
        assert fragment in dag.doc_md
    params = dag.params.dump()
    assert params["full_refresh"] is False and params["tables"] is None
    assert dag.params.get_param("tables").schema["examples"] == [
        "public.orders",
        "public.customers",
        "daily_revenue",
    ]


def test_broken_tenant_becomes_a_placeholder_and_never_hides_the_others(caplog):
    dags = build_dags(
        {
            "acme": GOOD,
            "moon": {**GOOD, "syncFrequency": "every blue moon"},
            "bad/id": GOOD,
            "half": {"redshift_conn_id": "rs", "status": "connected"},
            "gone": {**GOOD, "status": "disconnected"},
        }
    )
    assert "rs2gcs_sync__acme" in dags
    placeholder = dags["rs2gcs_sync__moon"]
    assert placeholder.task_ids == ["invalid_configuration"]
    assert "syncFrequency" in placeholder.doc_md and "'5min'" in placeholder.doc_md
    assert "rs2gcs:invalid" in placeholder.tags
    # Unpaused like a ready tenant's DAG: the paused flag stays with the DAG id once the entry is fixed.
    assert placeholder.is_paused_upon_creation is False
    assert dags["rs2gcs_sync__acme"].is_paused_upon_creation is False
    assert any(d.startswith("rs2gcs_sync__invalid_id_") for d in dags)  # 'bad/id' cannot be a DAG id
    assert "rs2gcs_sync__half" not in dags and "rs2gcs_sync__gone" not in dags
    assert "tenant 'moon': field 'syncFrequency'" in caplog.text


def test_manual_tenant_has_no_schedule_and_plan_picks_tables():
    from airflow_rs2gcs.planning import plan_tables
    from airflow_rs2gcs.tenants import parse_tenant

    tenant = parse_tenant("acme", {**GOOD, "syncFrequency": "manual"})
    manual = build_dags({"acme": {**GOOD, "syncFrequency": "manual"}})[sync_dag_id("acme")]
    assert coerce_to_core_timetable(manual.timetable).can_be_scheduled is False

    start, end = dt.datetime(2026, 11, 24, 7, tzinfo=dt.UTC), dt.datetime(2026, 11, 24, 8, tzinfo=dt.UTC)
    plan = plan_tables(tenant, {"tables": ["public.orders"], "full_refresh": False}, start, end)
    assert plan == [
        {
            "table": "public.orders",
            "sql": 'SELECT * FROM "public"."orders"',
            "object_prefix": "redshift/acme/public.orders/"
            "dt=2026-11-24/interval=20261124T070000Z_20261124T080000Z",
            "incremental_column": "updated_at",
            "fetch_method": "auto",
        }
    ]
    full = plan_tables(tenant, {"tables": None, "full_refresh": True}, start, end)
    assert [p["incremental_column"] for p in full] == [None, None, None]
    assert [p["fetch_method"] for p in full] == ["auto", "driver", "auto"]  # a table may choose its path
    with pytest.raises(ValueError, match="unknown tables"):
        plan_tables(tenant, {"tables": ["nope"]}, start, end)
