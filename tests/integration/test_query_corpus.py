"""No false refusals in the query gate: real analytical SELECTs pass it and run on the database.

The corpus is the 22 TPC-H queries and 52 TPC-DS queries (``sql/tpch``, ``sql/tpcds``; each file's
first comment names its parameters and any PostgreSQL adaptation), plus queries over columns named
with words that are keywords somewhere (``comment``, ``lock``, ``release``, ...). Each one is:

1. accepted by :func:`check_read_only_select` and by the tenant model (``TableSpec``);
2. planned by Configure's own probe (``RedshiftCatalogHook.result_columns``:
   ``SELECT * FROM (<query>) AS rs2gcs_probe LIMIT 0``), and
3. executed to the end in the engine's ``READ ONLY`` transaction (``read_only_transaction``),

both through the real ``RedshiftSQLHook``/``redshift_connector`` and the shim, on its own database of
the local stack (TPC-H with a tiny data set, TPC-DS empty, the keyword table with a few rows) that the
stack's login may only read. Step 3 also shows that the keyword-named columns are legal names for
PostgreSQL, not only for the gate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_rs2gcs.query_check import check_read_only_select
from airflow_rs2gcs.tenants import TableSpec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SQL = Path(__file__).parent / "sql"
TPCH = sorted((SQL / "tpch").glob("q*.sql"))
TPCDS = sorted((SQL / "tpcds").glob("q*.sql"))

# Columns named with words that are keywords somewhere (statements, types, clauses); all legal names.
KEYWORD_COLUMNS_SQL = """
CREATE TABLE events (
    id integer PRIMARY KEY, comment text, release text, lock boolean, import integer, export integer,
    date date, timestamp timestamp, type text, name text, value numeric(10, 2),
    "update" integer, "delete" integer, "insert" integer, "merge" integer
);
INSERT INTO events VALUES
    (1, 'first', 'v1.0', false, 3, 4, '2026-01-01', '2026-01-01 10:00', 'a', 'one', 1.50, 1, 0, 1, 0),
    (2, 'needs review', 'v1.1', true, 5, 0, '2026-01-02', '2026-01-02 11:00', 'b', 'two', 2.25, 0, 1, 0, 1),
    (3, NULL, 'v2.0', NULL, 0, 7, '2026-01-03', '2026-01-03 12:00', 'a', 'three', NULL, 2, 0, 0, 0);
"""
KEYWORD_COLUMN_QUERIES = {
    "plain": "select id, comment from events",
    "all-keyword-names": (
        "select comment, release, lock, import, export, date, timestamp, type, name, value from events"
    ),
    "first-column": "select comment, id from events order by id",
    "aliases": "select id as comment, comment as lock, release as import, name as value from events",
    "qualified": "select e.comment, e.release, e.lock, e.import, e.export, e.update, e.delete from events e",
    "where-and-order": (
        "select id from events where comment like '%review%' or lock is null or release = 'v1.0' "
        "order by release desc, import, export"
    ),
    "parenthesised-where": "select id from events where (comment is not null and lock) or (import > 2)",
    "group-having": (
        "select type, count(lock), sum(import) as export, max(release) from events group by type "
        "having sum(value) > 0 order by type"
    ),
    "functions": (
        "select upper(comment), coalesce(lock, false), date + 1, extract(year from timestamp) from events"
    ),
    "cte": (
        "with released as (select release, comment, lock from events where lock) "
        "select r.release, r.comment from released r"
    ),
    "data-modifying-names-in-lists": "select update, delete, insert, merge from events where update > 0",
    "case-and-window": (
        "select name, case when lock then 'locked' else 'open' end as lock_state, "
        "sum(value) over (partition by type order by date) as running_value from events"
    ),
}
CORPUS = (
    [pytest.param("tpch", path.read_text(), id=f"tpch-{path.stem}") for path in TPCH]
    + [pytest.param("tpcds", path.read_text(), id=f"tpcds-{path.stem}") for path in TPCDS]
    + [pytest.param("names", sql, id=f"names-{name}") for name, sql in KEYWORD_COLUMN_QUERIES.items()]
)
DATABASES = {
    "tpch": (SQL / "tpch" / "schema.sql").read_text(),
    "tpcds": (SQL / "tpcds" / "schema.sql").read_text(),
    "names": KEYWORD_COLUMNS_SQL,
}


def conn_id(corpus: str) -> str:
    return f"rs2gcs_corpus_{corpus}"


@pytest.fixture(scope="module")
def corpus_connections(stack) -> Iterator[dict]:
    """A database per corpus, readable (SELECT only) by the stack's login, and an Airflow connection
    ``rs2gcs_corpus_<corpus>`` to each through the shim; yields an open driver connection per corpus."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
    from rs2gcs_devstack.stack import connection_json, env_var_name

    user = stack.postgres.user
    with pytest.MonkeyPatch.context() as monkeypatch:
        for corpus, schema_sql in DATABASES.items():
            database = f"rs2gcs_corpus_{corpus}"
            stack.postgres.psql(f"DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database};")
            stack.postgres.psql(
                f'{schema_sql}\nGRANT SELECT ON ALL TABLES IN SCHEMA public TO "{user}";', database=database
            )
            connection = {**stack.redshift_connection(conn_id(corpus)), "schema": database}
            monkeypatch.setenv(env_var_name(conn_id(corpus)), connection_json(connection))
        connections = {
            corpus: RedshiftSQLHook(redshift_conn_id=conn_id(corpus)).get_conn() for corpus in DATABASES
        }
        try:
            yield connections
        finally:
            for connection in connections.values():
                connection.close()


def test_the_corpus_holds_the_22_tpch_queries_and_at_least_30_tpcds_queries():
    assert [path.stem for path in TPCH] == [f"q{n:02d}" for n in range(1, 23)]
    assert len(TPCDS) >= 30


@pytest.mark.parametrize(("corpus", "sql"), CORPUS)
def test_a_real_read_only_select_passes_the_gate_and_runs_on_the_database(corpus, sql, corpus_connections):
    from airflow_rs2gcs.engine.reader import read_only_transaction
    from airflow_rs2gcs.hooks.redshift_catalog import RedshiftCatalogHook

    checked = check_read_only_select(sql)
    assert TableSpec(name="q", query=sql).query == checked

    columns = RedshiftCatalogHook(redshift_conn_id=conn_id(corpus)).result_columns(checked)
    assert columns, "the probe described no columns"

    with read_only_transaction(corpus_connections[corpus]) as cursor:
        cursor.execute(checked)
        cursor.fetchall()
        assert len(cursor.description) >= len(columns)
