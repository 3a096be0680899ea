"""RedshiftToGCSOperator in any DAG: templated fields, Asset outlets, and its place in the tenant sync DAG."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import textwrap

import pytest

from airflow_rs2gcs.factory import build_sync_dag, redshift_pool, tables_asset_alias
from airflow_rs2gcs.tenants import parse_tenant
from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator
from rs2gcs_devstack.airflow_home import AirflowHome

BUCKET = "operator-test"
TABLE = "public.rs2gcs_operator_days"

DAG_FILE = f'''
import pendulum
from airflow.sdk import DAG, Asset, AssetAlias
from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator

with DAG("rs2gcs_any_dag", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         params={{"bucket": "{BUCKET}"}}):
    RedshiftToGCSOperator(
        task_id="export",
        sql="SELECT * FROM {TABLE} WHERE d < '{{{{ ds }}}}'",
        bucket="{{{{ params.bucket }}}}",
        object_prefix="any/single/dt={{{{ ds }}}}",
        redshift_conn_id="rs2gcs_redshift",
        gcp_conn_id="rs2gcs_gcs",
        export_format="csv",
        outlets=[Asset("gs://{BUCKET}/any/single")],
    )
    RedshiftToGCSOperator.partial(
        task_id="mapped",
        sql="SELECT * FROM {TABLE}",
        bucket="{BUCKET}",
        redshift_conn_id="rs2gcs_redshift",
        gcp_conn_id="rs2gcs_gcs",
        outlets=[AssetAlias("rs2gcs_any_tables")],
    ).expand(object_prefix=["any/t1/dt={{{{ ds }}}}", "any/t2/dt={{{{ ds }}}}"])
'''


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


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_the_operator_in_any_dag_renders_templates_and_emits_assets(stack, tmp_path):
    stack.postgres.psql(
        f"DROP TABLE IF EXISTS {TABLE}; CREATE TABLE {TABLE} AS SELECT g AS id, date '2026-11-20' + g AS d "
        f'FROM generate_series(0, 5) AS g; GRANT SELECT ON {TABLE} TO "{stack.postgres.user}";',
        database=stack.postgres.database,
    )
    stack.gcs.create_bucket(BUCKET)
    (tmp_path / "any_dag.py").write_text(textwrap.dedent(DAG_FILE))
    with AirflowHome(stack.airflow_env(), dags_folder=tmp_path) as home:
        home.migrate()
        home.run("dags", "test", "rs2gcs_any_dag", "2026-11-23T00:00:00+00:00", timeout=600)
        database = sqlite3.connect(home.path / "airflow.db")
        events = database.execute(
            "SELECT asset.uri, asset_event.source_task_id, asset_event.extra FROM asset_event "
            "JOIN asset ON asset.id = asset_event.asset_id ORDER BY asset.uri"
        ).fetchall()
    objects = stack.gcs.list_objects(BUCKET)
    assert "any/single/dt=2026-11-23/part-00000.csv" in objects
    assert {"any/t1/dt=2026-11-23/_manifest.json", "any/t2/dt=2026-11-23/_manifest.json"} <= set(objects)
    by_uri = {uri: (task, json.loads(extra)) for uri, task, extra in events}
    assert set(by_uri) == {f"gs://{BUCKET}/any/single", f"gs://{BUCKET}/any/t1", f"gs://{BUCKET}/any/t2"}
    task, extra = by_uri[f"gs://{BUCKET}/any/single"]
    assert task == "export" and extra["rows"] == 3  # d < '2026-11-23': the rendered {{ ds }}
    assert extra["manifest"] == f"gs://{BUCKET}/any/single/dt=2026-11-23/_manifest.json"
    assert by_uri[f"gs://{BUCKET}/any/t2"][0] == "mapped" and by_uri[f"gs://{BUCKET}/any/t2"][1]["rows"] == 6
