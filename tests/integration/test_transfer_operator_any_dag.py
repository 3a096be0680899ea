"""RedshiftToGCSOperator in any DAG, run by ``airflow dags test`` on the local stack: templated fields
rendered, Asset events emitted."""

from __future__ import annotations

import json
import sqlite3
import textwrap

import pytest
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
