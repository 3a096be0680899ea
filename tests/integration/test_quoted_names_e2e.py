"""A truthful catalog, end to end: names that need quoting are listed as ``tables`` accepts them, picked
as listed through a real ``rs2gcs_configure`` run, and synced by the tenant's real sync DAG into their
documented folders; what the login cannot SELECT is never listed.

PostgreSQL behind the Redshift shim (real ``RedshiftSQLHook``), fake-gcs-server (real ``GCSHook``).
"""

from __future__ import annotations

import io
import json
import sqlite3

import pyarrow.parquet as pq
import pytest
from rs2gcs_devstack.airflow_home import AirflowHome

from airflow_rs2gcs.engine.paths import table_folder

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

BUCKET = "quoted-names"
PREFIX = "names"
TENANT = "quoted"
SCHEMA = "analytics"

# Name as the catalog lists it -> the rows it holds (id, text).
READABLE = {
    'analytics."Mixed Case Table"': [(1, 'Grüße, "quoted"'), (2, None)],
    'analytics."table with spaces"': [(1, "a,b\nc")],
    'analytics."2024_sales"': [(1, "q1"), (2, "q2"), (3, "q3")],
    'analytics."ventes_été"': [(1, "crème brûlée"), (2, "日本語")],
    'analytics."Readable View"': [(1, "q1"), (2, "q2"), (3, "q3")],
    "analytics.sales_mv": [(3, "q3")],
}
KINDS = {'analytics."Readable View"': "view", "analytics.sales_mv": "materialized view"}
UNREADABLE = ["analytics.secret_salaries", 'analytics."Secret View"']
FOLDER = "analytics.mixed_case_table-5070d414"  # the documented rule, spelled out once


def _literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _source_sql(role: str) -> str:
    statements = [f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE", f"CREATE SCHEMA {SCHEMA}"]
    for name, rows in READABLE.items():
        if name in KINDS:
            continue
        values = ", ".join(f"({i}, {_literal(text)})" for i, text in rows)
        statements += [f"CREATE TABLE {name} (id integer, note text)", f"INSERT INTO {name} VALUES {values}"]
    statements += [
        f'CREATE VIEW {SCHEMA}."Readable View" AS SELECT * FROM {SCHEMA}."2024_sales"',
        f'CREATE MATERIALIZED VIEW {SCHEMA}.sales_mv AS SELECT * FROM {SCHEMA}."2024_sales" WHERE id = 3',
        f"CREATE TABLE {SCHEMA}.secret_salaries (id integer, salary numeric(12, 2))",
        f'CREATE VIEW {SCHEMA}."Secret View" AS SELECT * FROM {SCHEMA}.secret_salaries',
        f'GRANT USAGE ON SCHEMA {SCHEMA} TO "{role}"',
        *(f'GRANT SELECT ON {name} TO "{role}"' for name in READABLE),
    ]
    return ";\n".join(statements) + ";"


@pytest.fixture(scope="module")
def source(stack):
    stack.postgres.psql(_source_sql(stack.postgres.user), database=stack.postgres.database)
    stack.gcs.create_bucket(BUCKET)
    return stack


@pytest.fixture(scope="module")
def home(source):
    with AirflowHome(source.airflow_env()) as airflow_home:
        airflow_home.migrate()
        airflow_home.set_variable(
            "rs2gcs_tenants",
            {
                TENANT: {
                    "source": "redshift_to_gcs",
                    "status": "connected",
                    "redshift_conn_id": "rs2gcs_redshift",
                    "gcp_conn_id": "rs2gcs_gcs",
                    "bucket": BUCKET,
                    "prefix": PREFIX,
                }
            },
        )
        yield airflow_home


def trigger(home: AirflowHome, dag_id: str, conf: dict, *args: str):
    return home.run("dags", "test", dag_id, *args, "--conf", json.dumps(conf), check=False, timeout=600)


def _catalog(stack_env):
    from airflow_rs2gcs.hooks.redshift_catalog import RedshiftCatalogHook

    return RedshiftCatalogHook(redshift_conn_id="rs2gcs_redshift")


def test_the_catalog_lists_only_what_the_login_can_select_as_tables_accepts_it(source, stack_env):
    hook = _catalog(stack_env)
    relations = [r for page in hook.iter_relations(page_size=2) for r in page]
    ours = {r.qualified: r.kind for r in relations if r.schema == SCHEMA}
    assert ours == {name: KINDS.get(name, "table") for name in READABLE}
    assert hook.count_relations() == len(relations)
    assert [r.qualified for page in hook.iter_relations(2, limit=3) for r in page] == [
        r.qualified for r in relations[:3]
    ]
    for name in READABLE:
        assert hook.can_read(name), name
    for name in UNREADABLE:
        assert not hook.can_read(name), name


def test_configure_picks_quoted_names_as_listed_and_the_sync_writes_their_folders(home, source, stack_env):
    total = _catalog(stack_env).count_relations()
    result = trigger(home, "rs2gcs_configure", {"tenant_id": TENANT, "tables": [], "limit": 3})
    assert result.returncode != 0
    assert f"(3 shown of {total}; the task log lists the first 3)" in result.stdout

    names = list(READABLE)
    conf = {"tenant_id": TENANT, "tables": names, "syncFrequency": "daily", "format": "parquet"}
    result = trigger(home, "rs2gcs_configure", conf)
    assert result.returncode == 0, result.stdout[-3000:]
    for name in names:  # the paged listing in the log, spelled as picked
        assert f"{name} ({KINDS.get(name, 'table')})" in result.stdout
    for name in UNREADABLE:
        assert name not in result.stdout

    result = home.run("dags", "test", f"rs2gcs_sync__{TENANT}", "2026-11-24T00:00:00+00:00", check=False)
    assert result.returncode == 0, result.stdout[-3000:]

    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    gcs = GCSHook(gcp_conn_id="rs2gcs_gcs")
    assert table_folder('analytics."Mixed Case Table"') == FOLDER
    folders = {table_folder(name) for name in names}
    written = gcs.list(BUCKET, prefix=f"{PREFIX}/{TENANT}/")
    assert {o.split("/")[2] for o in written} == folders
    for name, rows in READABLE.items():
        manifests = [o for o in written if o.startswith(f"{PREFIX}/{TENANT}/{table_folder(name)}/")]
        manifests = [o for o in manifests if o.endswith("/_manifest.json")]
        assert len(manifests) == 1, (name, written)
        manifest = json.loads(gcs.download(BUCKET, manifests[0]))
        assert manifest["rows"] == len(rows), name
        got = []
        for obj in manifest["objects"]:
            assert obj["name"].startswith(f"{PREFIX}/{TENANT}/{table_folder(name)}/")
            got += pq.read_table(io.BytesIO(gcs.download(BUCKET, obj["name"]))).to_pylist()
        assert sorted((r["id"], r["note"]) for r in got) == sorted(rows), name

    # Each mapped export is named in the UI (the rendered map index) by its tables' folders: a view has
    # a sync_table task of its own ("analytics.v"), small tables share one ("small: a, b").
    with sqlite3.connect(home.path / "airflow.db") as db:
        rendered = db.execute(
            "select rendered_map_index from task_instance where dag_id = ? and map_index >= 0"
            " and task_id in ('sync_table', 'sync_small_tables')",
            (f"rs2gcs_sync__{TENANT}",),
        ).fetchall()
    named = [name for (r,) in rendered for name in r.removeprefix("small: ").split(", ")]
    assert sorted(named) == sorted(folders)
