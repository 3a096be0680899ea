"""Hostile input: random tenant configurations, SQL injection, and object names that try to escape.

Three gates are shown to hold against input crafted to break them:

- the factory (the path ``dags/rs2gcs.py`` takes): for a thousand random mixes of valid and invalid
  values, it never raises, each tenant gets its one DAG (sync DAG or placeholder, none when it is valid
  but not ready), and each placeholder and log line names the tenant and the field;
- SQL: hostile table names, cursor columns and custom queries are refused by the validators, by
  ``rs2gcs_configure`` (the real operator through ``airflow dags test --conf``) and by the sync DAG of an
  entry written by hand; the source database is compared before and after by a fingerprint (tables,
  row counts, a checksum of every row, sequences, large objects);
- object names: whatever the tenant id, prefix and table, every object lands under
  ``gs://<bucket>/<prefix>/<tenant_id>/`` (a property over the name builders, and one real export whose
  bucket is listed afterwards).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rs2gcs_devstack.airflow_home import AirflowHome

from airflow_rs2gcs.engine.paths import check_object_prefix, data_object_name, manifest_object_name
from airflow_rs2gcs.factory import build_dags, sync_dag_id
from airflow_rs2gcs.planning import plan_tables
from airflow_rs2gcs.query_check import QueryNotAllowed, check_read_only_select
from airflow_rs2gcs.sql import quote_table
from airflow_rs2gcs.tenants import TableSpec, TenantConfigError, parse_tenant

pytestmark = [pytest.mark.timeout(900)]

# Derandomized and without an example database: the same 1000 cases on every machine and every run.
PROPERTY = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- the factory against random tenant configurations ------------------------------------------------

# Per key of a tenant entry: values the contract accepts, and values it must refuse.
VALID_VALUES: dict[str, list] = {
    "source": ["redshift_to_gcs"],
    "status": ["connected", "configured", "disconnected"],
    "redshift_conn_id": ["rs", "redshift_acme"],
    "gcp_conn_id": ["gcs", "gcs_acme"],
    "bucket": ["acme-exports", "b_1-x"],
    "prefix": ["", "redshift", "/lead//trail/", "a/b=c/x.y"],
    "syncFrequency": [
        "5min",
        "5 minutes",
        "hourly",
        "1 Hour",
        "daily",
        "manual",
        " 30  2 * * * ",
        "*/10 * * * *",
    ],
    "timezone": ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"],
    "format": ["parquet", "csv", "jsonl"],
    "tables": [
        [{"name": "public.orders"}],
        [
            {"name": "public.orders", "mode": "incremental", "cursor_column": "updated_at"},
            {"name": "daily", "query": "select order_date, count(*) from public.orders group by 1;"},
        ],
        [],
    ],
    "webhooks": [[], [{"id": "wh_1", "url": "https://hooks.example.com/x", "secret_conn_id": "wh"}]],
    "catchup": [True, False],
    "owner": ["data-team"],
}
INVALID_VALUES: dict[str, list] = {
    "source": ["s3_to_gcs", 1, None, ""],
    "status": ["active", 3, ""],
    "redshift_conn_id": [123, [], {"a": 1}],
    "gcp_conn_id": [0.5, ["gcs"]],
    "bucket": ["UPPER", "ab", "../x", "a/b", "b" * 64, 5, "bucket.with.dots", "buck\x00et"],
    "prefix": [
        "../escape",
        "a/../b",
        "./x",
        "x/./y",
        "a\uff0fb",  # fullwidth solidus
        "a\u2215b",  # division slash
        "\u2024\u2024/x",  # one-dot leaders
        "a\u202eb",  # right-to-left override
        "a b",
        "a\x00b",
        "x\n/y",
        "x" * 129,
        7,
        None,
    ],
    "syncFrequency": ["every blue moon", "*/5 * * *", "0 0 * * * *", "@daily", "61 * * * *", 5, "", "5 min"],
    "timezone": ["Mars/Olympus", "UTC+25", "", 0, "../../etc/passwd", "Europe/Berlin\x00"],
    "format": ["xlsx", "PARQUET", 1, None],
    "tables": [
        "public.orders",
        {"name": "x"},
        [5],
        [{"name": "x; drop table y"}],
        [{"name": "a.b.c"}],
        [{"name": "o", "mode": "incremental"}],
        [{"name": "o", "mode": "incremental", "cursor_column": "x;y"}],
        [{"name": "o", "mode": "sometimes"}],
        [{"nme": "o"}],
        [{"name": "q", "query": "  "}],
        [{"name": "q", "query": "delete from public.orders"}],
        [{"name": "q", "query": "select pg_sleep(10)"}],
    ],
    "webhooks": [
        [{"id": "", "url": "https://x.example"}],
        [{"id": "w", "url": "ftp://x.example"}],
        [{"id": "w"}],
        [{"id": "w", "url": "https://x.example", "secrett": "s"}],
        "https://x.example",
    ],
    "catchup": ["maybe", 2, []],
    "owner": [5, None],
    "connected_at": [5, []],
}
UNKNOWN_KEYS = ["tabels", "Bucket", "schedule", "password", "syncfrequency"]
# Refused only once every field is valid (a check across fields), so named only when it is the only fault.
DUPLICATE_TABLES = [{"name": "public.o"}, {"name": "PUBLIC.O"}]
NOT_AN_OBJECT = [[], "tenant", 5, None, True]
HOSTILE_TENANT_IDS = [
    "",
    "..",
    "a/b",
    "../x",
    "a\x00",
    "acme\n",
    " acme",
    "\uff41\uff43\uff4d\uff45",  # fullwidth "acme"
    "acme\u202e",
    "a\u2215b",
    "x" * 64,
    "-lead",
    "\u65e5\u672c",
    "a.b",
]
TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
REQUIRED = ("redshift_conn_id", "gcp_conn_id", "bucket", "tables", "syncFrequency")


@st.composite
def tenant_cases(draw) -> tuple[str, object, dict]:
    """One tenant id and entry, with what the contract says about it (independent of the product)."""
    if draw(st.integers(0, 9)) == 0:
        tenant_id = draw(st.sampled_from(HOSTILE_TENANT_IDS) | st.text(max_size=70))
    else:
        tenant_id = draw(st.from_regex(TENANT_ID, fullmatch=True))
    if not TENANT_ID.fullmatch(tenant_id):
        return tenant_id, {}, {"kind": "invalid", "named": {"tenant id"}}
    if draw(st.integers(0, 19)) == 0:
        return tenant_id, draw(st.sampled_from(NOT_AN_OBJECT)), {"kind": "invalid", "named": {"JSON object"}}
    entry, invalid = {}, set()
    for key in sorted(VALID_VALUES.keys() | INVALID_VALUES.keys()):
        if key in INVALID_VALUES and draw(st.integers(0, 39)) == 0:
            entry[key] = draw(st.sampled_from(INVALID_VALUES[key]))
            invalid.add(key)
        elif key in VALID_VALUES and draw(st.integers(0, 9)) < (9 if key in REQUIRED else 5):
            entry[key] = draw(st.sampled_from(VALID_VALUES[key]))
    if draw(st.integers(0, 7)) == 0:
        key = draw(st.sampled_from(UNKNOWN_KEYS))
        entry[key] = "x"
        invalid.add(key)
    if draw(st.integers(0, 29)) == 0:
        entry["tenant_id"] = tenant_id  # the id is the key, never a field
        return tenant_id, entry, {"kind": "invalid", "named": {"tenant_id"}}
    if not invalid and draw(st.integers(0, 29)) == 0:
        entry["tables"] = DUPLICATE_TABLES
        return tenant_id, entry, {"kind": "invalid", "named": {"tables", "duplicate"}}
    if invalid:
        return tenant_id, entry, {"kind": "invalid", "named": invalid}
    complete = all(entry.get(key) for key in REQUIRED)
    ready = complete and entry.get("status") != "disconnected"
    return tenant_id, entry, {"kind": "ready" if ready else "no dag", "named": set()}


@st.composite
def tenants_variables(draw) -> dict[str, tuple[object, dict]]:
    cases = draw(st.lists(tenant_cases(), min_size=1, max_size=3, unique_by=lambda case: case[0]))
    return {tenant_id: (entry, expected) for tenant_id, entry, expected in cases}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def factory_errors() -> Iterator[_Records]:
    handler = _Records()
    logger = logging.getLogger("airflow_rs2gcs.factory")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@PROPERTY
@given(variable=tenants_variables())
def test_random_tenant_configurations_give_one_dag_each_and_name_tenant_and_field(variable, factory_errors):
    factory_errors.messages.clear()
    dags = build_dags({tenant_id: entry for tenant_id, (entry, _) in variable.items()})

    expected_ids = {sync_dag_id(t) for t, (_, expected) in variable.items() if expected["kind"] != "no dag"}
    assert set(dags) == expected_ids
    for tenant_id, (_, expected) in variable.items():
        event(expected["kind"])
        dag = dags.get(sync_dag_id(tenant_id))
        if expected["kind"] == "ready":
            # The small-table tasks exist only where two tables may turn out small.
            assert (
                {"plan", "sync_table", "summary"}
                <= set(dag.task_ids)
                <= {
                    "plan",
                    "small_table_groups",
                    "sync_table",
                    "sync_small_tables",
                    "summary",
                }
            ), tenant_id
        elif expected["kind"] == "invalid":
            assert dag.task_ids == ["invalid_configuration"], tenant_id
            logged = [m for m in factory_errors.messages if f"tenant {tenant_id!r}:" in m]
            assert len(logged) == 1, (tenant_id, factory_errors.messages)
            for shown in (dag.doc_md, logged[0]):
                assert f"tenant {tenant_id!r}:" in shown
                for field in expected["named"]:
                    assert field in shown, (tenant_id, field, shown)


# --- SQL injection ------------------------------------------------------------------------------------

HOSTILE_TABLE_NAMES = [
    "x; drop table public.orders",
    "public.orders; delete from public.orders",
    "public.orders--",
    "public.orders/* */",
    'public."orders"',
    "public.orders' or '1'='1",
    "public.orders;commit",
    "orders$$; drop table x; $$",
    'U&"\\0070ublic".orders',
    "pg_catalog.pg_sleep(10)",
    "(select 1)",
    "public.orders union select * from pg_shadow",
    "a.b.c",
    "1orders",
    "public .orders",
    "public.orders\x00",
    "public\uff0eorders",  # fullwidth full stop
    "public.orders\u202e",
    "o" * 200,
    # Quoted parts: legal identifiers only, quoted only where needed, nothing after the closing quote.
    'public."Orders"; drop table public.orders',
    'public."Orders"--',
    'public."Orders',
    '"x"".y',
    'public."a\x00b"',
    'public."a\nb"',
    'public."\u202eOrders"',
    'public.""',
    '"A"."B"."C"',
    'public."' + "x" * 128 + '"',
]
HOSTILE_CURSOR_COLUMNS = [
    "updated_at; drop table public.orders",
    "updated_at >= '2000-01-01' or 1=1 --",
    'updated_at" > 0; delete from public.orders; --',
    "updated_at/**/",
    "pg_sleep(10)",
    "updated_at)",
    "$$x$$",
    "1=1",
    "updated-at",
    "",
]
HOSTILE_QUERIES = [
    "delete from public.orders",
    "select 1; drop table public.orders",
    "select * from public.orders; delete from public.orders",
    "select 1 -- \n; delete from public.orders",
    "select 1 --\r; delete from public.orders",
    "select 1 /* */ ; truncate public.orders",
    "select 1 /* /* */ ; delete from public.orders; /* */ */",
    "select 'a\\' ; delete from public.orders; --'",
    "select x$a$ from public.orders; delete from public.orders; select 1 as y$a$",
    "select $t$ $t$; insert into public.orders select * from public.orders",
    "with d as (delete from public.orders returning *) select * from d",
    "with u as (update public.orders set amount = 0 returning 1) select 1",
    "with d as materialized (delete from public.orders returning *) select * from d",
    "with x as (select 1) delete from public.orders",
    "with x as (select 1) update public.orders set amount = 0",
    "with x as (select 1) insert into public.orders select * from public.orders",
    # The statement after a WITH clause may follow a SEARCH or CYCLE clause's last name.
    "with recursive r as (select 1 as n union all select n + 1 from r where n < 2) "
    "search depth first by n set o delete from public.orders",
    "with recursive r as (select 1 as n union all select n + 1 from r where n < 2) "
    "cycle n set c using p delete from public.orders",
    "select * into hostile_new_table from public.orders",
    "select * into temp hostile_new_table from public.orders",
    "select * from public.orders for update",
    "select * from public.orders for no key update",
    "select * from public.orders for share",
    "select * from public.orders for key share",
    # Keywords that are also column names (comment, lock) still never start a second statement.
    "select 1; comment on table public.orders is 'x'",
    "select lock from public.orders; lock table public.orders",
    "copy public.orders to '/tmp/x'",
    "select pg_sleep(30)",
    "select pg_catalog.pg_sleep(30)",
    'select "pg_sleep"(30)',
    'select U&"\\0070g_sleep"(30)',
    "select set_config('search_path', 'evil', false)",
    "select pg_terminate_backend(pid) from pg_stat_activity",
    "select pg_cancel_backend(pid) from pg_stat_activity",
    "select nextval('hostile.counter')",
    "select setval('hostile.counter', 1000)",
    "select pg_advisory_lock(42)",
    "select lo_import('/etc/passwd')",
    "select lo_create(0)",
    "select dblink_exec('dbname=dev', 'drop table public.orders')",
    "select * from dblink('dbname=dev', 'select 1') as t(x int)",
    "select pg_read_file('/etc/passwd')",
    "select query_to_xml('delete from public.orders returning *', true, true, '')",
    "select pg_notify('x', 'y')",
    "select * from public.orders) as s union all (select * from public.orders",
    "vacuum public.orders",
    "lock table public.orders",
    "",
]


@pytest.mark.parametrize("name", HOSTILE_TABLE_NAMES)
def test_hostile_table_names_are_refused(name):
    with pytest.raises(ValueError):
        TableSpec(name=name)


@pytest.mark.parametrize("column", HOSTILE_CURSOR_COLUMNS)
def test_hostile_cursor_columns_are_refused(column):
    with pytest.raises(ValueError):
        TableSpec(name="public.orders", mode="incremental", cursor_column=column)


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_hostile_queries_are_refused(query):
    with pytest.raises(QueryNotAllowed):
        check_read_only_select(query)
    with pytest.raises(TenantConfigError, match=r"tables\.0\.query"):
        parse_tenant("acme", {"tables": [{"name": "q", "query": query}]})


@pytest.mark.parametrize(
    "query",
    [
        "select 'drop table x; delete' as note, $$;$$ as s",
        'select 1 as "delete", 2 as "x$a$"',
        "select order_date from public.orders -- trailing comment",
        "select a$b$c from (select 1 as a$b$c) t;",
        "with t as (select 1 as x) select * from t /* done */",
        "select id, comment, lock, release, import, export from t order by comment",
    ],
)
def test_read_only_selects_with_tricky_text_still_pass(query):
    checked = check_read_only_select(query)
    assert checked in query and not checked.endswith(";") and "--" not in checked and "/*" not in checked


# --- the real path: the database before and after -----------------------------------------------------

BUCKET = "hostile-exports"
HOSTILE_SCHEMA_SQL = """
DROP SCHEMA IF EXISTS hostile CASCADE;
CREATE SCHEMA hostile;
CREATE SEQUENCE hostile.counter;
CREATE TABLE hostile.victims (id bigint PRIMARY KEY, note text, updated_at timestamptz NOT NULL);
INSERT INTO hostile.victims
SELECT g, 'row ' || g, timestamptz '2026-11-23 00:00:00+00' + g * interval '1 minute'
FROM generate_series(1, 500) AS g;
"""


def grants(role: str) -> str:
    return (
        f'GRANT USAGE ON SCHEMA public, hostile TO "{role}"; '
        f'GRANT SELECT ON ALL TABLES IN SCHEMA public, hostile TO "{role}"; '
        f'GRANT USAGE ON SEQUENCE hostile.counter TO "{role}";'
    )


def fingerprint(stack) -> dict[str, str]:
    """Every user table's row count and an MD5 of its rows in order, sequences, large objects."""
    psql = stack.postgres.psql
    database = stack.postgres.database
    tables = psql(
        "select schemaname || '.' || tablename from pg_tables "
        "where schemaname not in ('pg_catalog', 'information_schema') order by 1",
        database=database,
    ).split()
    counts = " union all ".join(
        f"select '{table}', count(*)::text || ' ' || "
        f"coalesce(md5(string_agg(t::text, E'\\n' order by t::text)), '-') from {quote_table(table)} t"
        for table in tables
    )
    extra = (
        "select 'sequence ' || schemaname || '.' || sequencename, coalesce(last_value::text, 'unused') "
        "from pg_sequences union all "
        "select 'large objects', count(*)::text from pg_largeobject_metadata union all "
        "select 'schemas', string_agg(nspname, ',' order by nspname) from pg_namespace union all "
        "select 'functions', count(*)::text from pg_proc"
    )
    rows = psql(f"{counts} union all {extra}" if counts else extra, database=database)
    return dict(line.split("|", 1) for line in rows.splitlines() if "|" in line)


def hand_written(stack, **table) -> dict:
    return {
        "source": "redshift_to_gcs",
        "status": "configured",
        "redshift_conn_id": "rs2gcs_redshift",
        "gcp_conn_id": "rs2gcs_gcs",
        "bucket": BUCKET,
        "prefix": "hostile",
        "syncFrequency": "daily",
        "tables": [table],
    }


@pytest.fixture(scope="module")
def source(stack):
    from rs2gcs_devstack.sample_data import SCHEMA_SQL, grant_sql

    database = stack.postgres.database
    stack.postgres.psql(SCHEMA_SQL + grant_sql(stack.postgres.user), database=database)
    stack.postgres.psql(HOSTILE_SCHEMA_SQL + grants(stack.postgres.user), database=database)
    stack.gcs.create_bucket(BUCKET)
    return stack


@pytest.fixture(scope="module")
def home(source):
    with AirflowHome(source.airflow_env()) as airflow_home:
        airflow_home.migrate()
        airflow_home.set_variable(
            "rs2gcs_tenants",
            {
                "acme": {
                    "source": "redshift_to_gcs",
                    "status": "connected",
                    "redshift_conn_id": "rs2gcs_redshift",
                    "gcp_conn_id": "rs2gcs_gcs",
                    "bucket": BUCKET,
                },
                # Written by hand, past rs2gcs_configure: a query that would empty a table.
                "evil": hand_written(source, name="q", query="select 1; delete from hostile.victims"),
            },
        )
        yield airflow_home


def configure(home: AirflowHome, tables: list[str], options: dict) -> str:
    conf = {"tenant_id": "acme", "tables": tables, "table_options": options, "syncFrequency": "daily"}
    result = home.run("dags", "test", "rs2gcs_configure", "--conf", json.dumps(conf), check=False)
    assert result.returncode != 0, result.stdout[-3000:]
    return result.stdout + result.stderr


@pytest.mark.integration
def test_configure_refuses_every_hostile_query_and_the_source_is_unchanged(home, source):
    before = fingerprint(source)
    assert before["hostile.victims"].startswith("500 ")
    queries = [q for q in HOSTILE_QUERIES if q]
    names = [f"q{i:02d}" for i in range(len(queries))]
    output = configure(home, names, {n: {"query": q} for n, q in zip(names, queries, strict=True)})
    for name in names:  # one run refuses them all, each named
        assert f"table {name!r}: field 'query' is not allowed" in output, name
    assert fingerprint(source) == before
    assert "tables" not in tenants(home)["acme"]


@pytest.mark.integration
def test_configure_refuses_hostile_table_names_and_cursor_columns_and_the_source_is_unchanged(home, source):
    before = fingerprint(source)
    columns = [f"c{i:02d}" for i in range(len(HOSTILE_CURSOR_COLUMNS))]
    options = {
        name: {"query": "select updated_at from hostile.victims", "mode": "incremental", "cursor_column": col}
        for name, col in zip(columns, HOSTILE_CURSOR_COLUMNS, strict=True)
    }
    output = configure(home, HOSTILE_TABLE_NAMES + columns, options)
    for index, name in enumerate(HOSTILE_TABLE_NAMES):
        assert f"field 'tables.{index}.name'" in output or f"field 'tables.{index}'" in output, name
    for index, column in enumerate(HOSTILE_CURSOR_COLUMNS, start=len(HOSTILE_TABLE_NAMES)):
        assert f"field 'tables.{index}" in output, column
    assert fingerprint(source) == before
    assert "tables" not in tenants(home)["acme"]


@pytest.mark.integration
def test_a_hand_written_hostile_entry_gets_a_placeholder_that_runs_nothing(home, source):
    before = fingerprint(source)
    result = home.run("dags", "test", "rs2gcs_sync__evil", "2026-11-24T00:00:00+00:00", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "invalid_configuration" in output and "more than one statement" in output
    assert "field 'tables.0.query'" in output
    assert fingerprint(source) == before
    assert source.gcs.list_objects(BUCKET) == []


def tenants(home: AirflowHome) -> dict:
    stored = home.run("variables", "get", "rs2gcs_tenants").stdout
    return json.loads(stored[stored.index("{") :])


@pytest.mark.integration
def test_the_engine_refuses_a_second_statement_even_past_every_validator(source, stack_env):
    """Defence in depth: the operator given two statements directly (no tenant model) runs neither."""
    from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator

    before = fingerprint(source)
    for sql in ["select 1; delete from hostile.victims", "delete from hostile.victims"]:
        operator = RedshiftToGCSOperator(
            task_id="direct",
            sql=sql,
            bucket=BUCKET,
            object_prefix="direct/x",
            redshift_conn_id="rs2gcs_redshift",
            gcp_conn_id="rs2gcs_gcs",
        )
        with pytest.raises(Exception, match=r"(?i)multiple commands|syntax error|cannot insert"):
            operator.execute({})  # type: ignore[arg-type]
    assert fingerprint(source) == before


# --- object names never leave gs://<bucket>/<prefix>/<tenant_id>/ --------------------------------------

HOSTILE_PATH_PARTS = [
    "..",
    ".",
    "/",
    "//",
    "\x00",
    "\n",
    "\uff0f",
    "\u2215",
    "\u2024",
    "\u2025",
    "\u202e",
    "\\",
]
path_text = st.lists(
    st.sampled_from(HOSTILE_PATH_PARTS) | st.text(alphabet="abz09_-.=$/ ", min_size=1, max_size=8),
    max_size=6,
).map("".join)
valid_ids = st.from_regex(TENANT_ID, fullmatch=True)
START = dt.datetime(2026, 11, 22, 0, 17, tzinfo=dt.UTC)
END = dt.datetime(2026, 11, 23, 0, 17, tzinfo=dt.UTC)


def expected_root(prefix: str, tenant_id: str) -> str:
    return "/".join(part for part in (*[s for s in prefix.split("/") if s], tenant_id) if part)


@PROPERTY
@given(
    # Valid ids twice as often as hostile ones, so that many cases get past validation.
    tenant_id=st.sampled_from(HOSTILE_TENANT_IDS) | path_text | valid_ids | valid_ids,
    prefix=path_text | st.sampled_from(VALID_VALUES["prefix"]),
    table=st.sampled_from(
        ["public.orders", "o$1", "_x.y_", " padded.name ", 'analytics."Mixed Case Table"', '"..".".."']
    )
    | st.sampled_from(['"/"."\\"', '"\u2215".".x"', 'a."ventes_été/../.."'])
    | path_text
    | path_text.map(lambda text: 'a."' + text.replace('"', '""') + '"'),
)
def test_object_names_stay_under_prefix_and_tenant(tenant_id, prefix, table):
    try:
        tenant = parse_tenant(tenant_id, {"prefix": prefix, "tables": [{"name": table}]})
    except TenantConfigError:
        event("refused")
        return  # refused: nothing is ever written for it
    event("accepted")
    assert tenant.tenant_id == tenant_id  # never normalised into another tenant's id
    root = expected_root(prefix.strip(), tenant_id)
    planned = plan_tables(tenant, {}, START, END) + plan_tables(tenant, {}, None, None, run_after=END)
    for table_plan in planned:
        object_prefix = check_object_prefix(table_plan["object_prefix"])
        names = [
            object_prefix,
            data_object_name(object_prefix, 0, "csv"),
            manifest_object_name(object_prefix),
        ]
        for name in names:
            assert name.startswith(f"{root}/"), (name, root)
            segments = name.split("/")
            assert not {"", ".", ".."} & set(segments), name
            assert name.isascii() and name.isprintable(), name
            assert segments[len(root.split("/")) - 1] == tenant_id


@pytest.mark.parametrize("tenant_id", HOSTILE_TENANT_IDS)
def test_hostile_tenant_ids_are_refused(tenant_id):
    with pytest.raises(TenantConfigError, match="tenant id"):
        parse_tenant(tenant_id, {})


@pytest.mark.parametrize("prefix", [p for p in INVALID_VALUES["prefix"] if isinstance(p, str)])
def test_hostile_prefixes_are_refused(prefix):
    with pytest.raises(TenantConfigError, match="prefix"):
        parse_tenant("acme", {"prefix": prefix})


@pytest.mark.integration
def test_a_real_export_writes_only_under_prefix_and_tenant(source, stack_env):
    """One real export of an odd but valid configuration; then every object in the bucket is listed."""
    from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator

    bucket = "hostile-paths"
    source.gcs.create_bucket(bucket)
    tenant = parse_tenant(
        "t-1_X",
        {
            "prefix": "//lead/x.y=1//",
            "tables": [
                {"name": "hostile.victims", "mode": "incremental", "cursor_column": "updated_at"},
                {"name": "odd$name", "query": "select id, note from hostile.victims where id < 10"},
            ],
        },
    )
    start, end = dt.datetime(2026, 11, 23, tzinfo=dt.UTC), dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    for index, planned in enumerate(plan_tables(tenant, {}, start, end)):
        RedshiftToGCSOperator(
            task_id=f"t{index}",
            bucket=bucket,
            redshift_conn_id="rs2gcs_redshift",
            gcp_conn_id="rs2gcs_gcs",
            **{key: value for key, value in planned.items() if key != "table"},  # "table" names it in logs
        ).execute({"data_interval_start": start, "data_interval_end": end})  # type: ignore[arg-type]
    names = source.gcs.list_objects(bucket)
    assert len(names) == 4  # a data file and a manifest per table
    assert all(name.startswith("lead/x.y=1/t-1_X/") for name in names), names
