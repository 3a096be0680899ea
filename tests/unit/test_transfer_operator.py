"""RedshiftToGCSOperator: templated fields, settings checks, and its place in the tenant sync DAG."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_rs2gcs.factory import build_sync_dag, redshift_pool, tables_asset_alias
from airflow_rs2gcs.tenants import parse_tenant
from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator


def test_templated_fields_cover_the_sql_the_bucket_and_the_prefix():
    assert {"sql", "bucket", "object_prefix", "incremental_column"} <= set(
        RedshiftToGCSOperator.template_fields
    )
    assert ".sql" in RedshiftToGCSOperator.template_ext


def test_settings_are_checked_when_the_dag_is_built():
    with pytest.raises(ValueError, match="does not apply to csv"):
        RedshiftToGCSOperator(
            task_id="t",
            sql="SELECT 1",
            bucket="b",
            object_prefix="p",
            export_format="csv",
            compression="zstd",
        )


def test_an_incremental_export_refuses_a_zero_length_interval():
    """A manual run of an unscheduled DAG has start == end: the window would silently match no row."""
    operator = RedshiftToGCSOperator(
        task_id="t", sql="SELECT * FROM t", bucket="b", object_prefix="p", incremental_column="updated_at"
    )
    moment = dt.datetime(2026, 11, 30, 9, 26, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match=r"positive length.*manual-only tenant"):
        operator._query({"data_interval_start": moment, "data_interval_end": moment})
    later = moment + dt.timedelta(hours=1)
    assert "updated_at" in operator._query({"data_interval_start": moment, "data_interval_end": later})


def test_the_sync_dag_maps_tables_into_the_connections_pool_with_an_asset_per_table():
    tenant = parse_tenant(
        "acme",
        {
            "redshift_conn_id": "redshift_acme",
            "gcp_conn_id": "gcs_acme",
            "bucket": "acme-exports",
            "prefix": "redshift",
            "syncFrequency": "daily",
            "tables": [{"name": "public.orders"}, {"name": "public.customers"}],
        },
    )
    task = build_sync_dag(tenant).get_task("sync_table")
    assert task.pool == redshift_pool("redshift_acme") == "rs2gcs_redshift__redshift_acme"
    assert task.outlets == [tables_asset_alias("acme")]
    assert tables_asset_alias("acme").name == "rs2gcs_sync__acme"
    assert task.partial_kwargs["single_node_cluster"] is False


def test_a_single_node_tenant_fetches_at_most_1000_rows():
    entry = {
        "redshift_conn_id": "redshift_acme",
        "gcp_conn_id": "gcs_acme",
        "bucket": "acme-exports",
        "syncFrequency": "daily",
        "tables": [{"name": "public.orders"}],
        "single_node_cluster": True,
    }
    task = build_sync_dag(parse_tenant("acme", entry)).get_task("sync_table")
    assert task.partial_kwargs["single_node_cluster"] is True
    operator = RedshiftToGCSOperator(
        task_id="t", sql="SELECT 1", bucket="b", object_prefix="p", single_node_cluster=True
    )
    assert operator.fetch_size == 1000
