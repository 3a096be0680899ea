"""OpenLineage of the transfer operators: dataset names as the amazon and google providers give them,
the custom-query path through the openlineage provider's SQL parser, the grouped operator's several
tables, and lineage that never fails a task (the Redshift boundary, the default-schema query, is faked)."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

from airflow_rs2gcs.transfers.lineage import TableExport, task_lineage, whole_table
from airflow_rs2gcs.transfers.redshift_tables_to_gcs import RedshiftTablesToGCSOperator
from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator, export_outcome

CONN_ID = "rs_lineage"
NAMESPACE = "redshift://my-cluster.eu-west-1:5439"
PREFIX = "exports/acme/public.orders/dt=2026-12-01/interval=20261201T000000Z_20261202T000000Z"
SCHEMA = (
    {"name": "order_id", "arrow_type": "int64", "source_type": "int8", "source_type_oid": 20},
    {"name": "amount", "arrow_type": "decimal128(18, 2)", "source_type": "numeric", "source_type_oid": 1700},
)
OUTCOME = {"rows": 120, "bytes": 4096, "objects": 2}


@pytest.fixture
def redshift(monkeypatch):
    """A Redshift connection named as a real cluster's endpoint; the current-schema query counted."""
    connection = {
        "conn_type": "redshift",
        "host": "my-cluster.abc123xyz.eu-west-1.redshift.amazonaws.com",
        "port": 5439,
        "schema": "dev",
        "login": "user",
        "password": "secret",
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))
    asked: list[str] = []

    def current_schema(hook):
        asked.append(hook.redshift_conn_id)
        return "analytics"

    monkeypatch.setattr(RedshiftSQLHook, "get_openlineage_default_schema", current_schema)
    return asked


def _by_name(datasets):
    return {d.name: d for d in datasets}


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ('SELECT * FROM "public"."orders"', ("public", "orders")),
        ("select * from Public.Orders;", ("public", "orders")),
        ('SELECT * FROM analytics."Mixed ""Case"', ("analytics", 'Mixed "Case')),
        ("select * from orders", (None, "orders")),
        ("select * from public.orders where amount > 0", None),
        ("select * from a join b on a.id = b.id", None),
        ("select id from public.orders", None),
        ("select * from (select 1) q", None),
    ],
)
def test_whole_table_recognises_only_a_plain_copy_of_one_table(sql, expected):
    assert whole_table(sql) == expected


def test_a_whole_table_is_named_as_the_amazon_provider_names_redshift_with_its_columns(redshift):
    exported = TableExport('SELECT * FROM "public"."orders"', "acme-exports", PREFIX).exported(
        OUTCOME, SCHEMA
    )
    lineage = task_lineage(CONN_ID, [exported])
    [source] = lineage.inputs
    assert (source.namespace, source.name) == (NAMESPACE, "dev.public.orders")
    assert [(f.name, f.type) for f in source.facets["schema"].fields] == [
        ("order_id", "int8"),
        ("amount", "numeric"),
    ]
    [target] = lineage.outputs
    assert (target.namespace, target.name) == ("gs://acme-exports", "exports/acme/public.orders")
    statistics = target.outputFacets["outputStatistics"]
    assert (statistics.rowCount, statistics.size, statistics.fileCount) == (120, 4096, 2)
    assert [(f.name, f.type) for f in target.facets["schema"].fields] == [
        ("order_id", "int64"),
        ("amount", "decimal128(18, 2)"),
    ]
    assert lineage.job_facets["sql"].query == 'SELECT * FROM "public"."orders"'
    assert redshift == []  # a qualified name needs no current-schema query


def test_before_the_export_the_output_has_no_statistics(redshift):
    lineage = task_lineage(CONN_ID, [TableExport('SELECT * FROM "public"."orders"', "b", PREFIX)])
    [target] = lineage.outputs
    assert target.outputFacets == {} and target.facets == {}
    assert lineage.inputs[0].facets == {}


def test_a_table_read_by_several_exports_is_listed_once_with_its_columns(redshift):
    exports = [
        TableExport("select order_id from public.orders where amount > 0", "b", "exports/acme/big"),
        TableExport('SELECT * FROM "public"."orders"', "b", PREFIX).exported(OUTCOME, SCHEMA),
    ]
    [source] = task_lineage(CONN_ID, exports).inputs
    assert source.name == "dev.public.orders" and "schema" in source.facets


def test_an_unqualified_table_takes_the_current_schema_asked_once(redshift):
    exports = [
        TableExport("select * from orders", "b", PREFIX),
        TableExport("select * from items", "b", "x/items"),
    ]
    lineage = task_lineage(CONN_ID, exports)
    assert sorted(_by_name(lineage.inputs)) == ["dev.analytics.items", "dev.analytics.orders"]
    assert redshift == [CONN_ID]


def test_a_custom_query_reads_its_tables_through_the_sql_parser(redshift):
    sql = (
        "select o.order_id, c.name from public.orders o join sales.customers c on c.id = o.customer_id "
        "where o.amount > 0"
    )
    lineage = task_lineage(
        CONN_ID, [TableExport(sql, "b", "exports/acme/big_orders").exported(OUTCOME, SCHEMA)]
    )
    inputs = _by_name(lineage.inputs)
    assert sorted(inputs) == ["dev.public.orders", "dev.sales.customers"]
    assert {d.namespace for d in lineage.inputs} == {NAMESPACE}
    # The query's columns are not a table's: they describe the output, not an input.
    assert all("schema" not in d.facets for d in lineage.inputs)
    assert "schema" in lineage.outputs[0].facets
    assert redshift == []


def test_a_custom_query_with_an_unqualified_table_asks_the_current_schema(redshift):
    lineage = task_lineage(CONN_ID, [TableExport("select day, count(*) from events group by 1", "b", "p/e")])
    assert [d.name for d in lineage.inputs] == ["dev.analytics.events"]
    assert redshift == [CONN_ID]


def test_the_grouped_operator_reports_every_table_and_the_statistics_of_those_exported(redshift):
    tables = [
        {"table": "public.orders", "sql": 'SELECT * FROM "public"."orders"', "object_prefix": PREFIX},
        {
            "table": "public.items",
            "sql": 'SELECT * FROM "public"."items"',
            "object_prefix": "exports/acme/public.items/dt=x",
        },
        {
            "table": "top",
            "sql": "select * from public.orders join public.items using (order_id)",
            "object_prefix": "exports/acme/top/dt=x",
        },
    ]
    operator = RedshiftTablesToGCSOperator(
        task_id="t", tables=tables, bucket="acme-exports", redshift_conn_id=CONN_ID
    )
    start = operator.get_openlineage_facets_on_start()
    assert sorted(_by_name(start.inputs)) == ["dev.public.items", "dev.public.orders"]  # each table once
    assert sorted(_by_name(start.outputs)) == [
        "exports/acme/public.items",
        "exports/acme/public.orders",
        "exports/acme/top",
    ]
    assert all(o.outputFacets == {} for o in start.outputs)

    # As after a run in which orders was exported and the two others failed.
    operator._lineage_exports = {
        "public.orders": operator._planned_export(tables[0]).exported(OUTCOME, SCHEMA)
    }
    complete = _by_name(operator.get_openlineage_facets_on_complete(None).outputs)
    assert complete["exports/acme/public.orders"].outputFacets["outputStatistics"].rowCount == 120
    assert complete["exports/acme/public.items"].outputFacets == {}
    assert complete["exports/acme/top"].outputFacets == {}


def test_the_single_table_operator_reports_what_it_published(redshift):
    operator = RedshiftToGCSOperator(
        task_id="t",
        sql='SELECT * FROM "public"."orders"',
        bucket="b",
        object_prefix=PREFIX,
        redshift_conn_id=CONN_ID,
    )
    assert "outputStatistics" not in operator.get_openlineage_facets_on_complete(None).outputs[0].outputFacets
    operator._lineage_export = operator._planned_export().exported(OUTCOME, SCHEMA)
    [target] = operator.get_openlineage_facets_on_complete(None).outputs
    assert target.outputFacets["outputStatistics"].fileCount == 2


def test_an_unknown_connection_leaves_the_inputs_out_and_keeps_the_outputs(monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_NO_SUCH_CONN", raising=False)
    with caplog.at_level(logging.WARNING, logger="airflow_rs2gcs.transfers.lineage"):
        lineage = task_lineage("no_such_conn", [TableExport("select * from t", "b", PREFIX)])
    assert lineage.inputs == []
    assert [o.name for o in lineage.outputs] == ["exports/acme/public.orders"]
    assert "cannot name Redshift connection 'no_such_conn'" in caplog.text


def test_a_failing_table_is_logged_and_the_others_still_reported(redshift, monkeypatch, caplog):
    def broken(self):
        raise RuntimeError("SVV tables unavailable")

    monkeypatch.setattr(RedshiftSQLHook, "get_openlineage_default_schema", broken)
    exports = [
        TableExport("select * from orders", "b", "exports/acme/orders/dt=x"),  # needs the broken query
        TableExport('SELECT * FROM "public"."items"', "b", "../escape"),  # a folder that is refused
        TableExport('SELECT * FROM "public"."items"', "b", "exports/acme/items/dt=x"),
    ]
    with caplog.at_level(logging.WARNING, logger="airflow_rs2gcs.transfers.lineage"):
        lineage = task_lineage(CONN_ID, exports)
    assert [d.name for d in lineage.inputs] == ["dev.public.items"]
    assert [o.name for o in lineage.outputs] == ["exports/acme/orders", "exports/acme/items"]
    assert "cannot read the inputs of exports/acme/orders/dt=x" in caplog.text
    assert "cannot name the output ../escape" in caplog.text


def test_without_the_openlineage_provider_there_is_no_lineage_and_no_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", None)
    assert task_lineage(CONN_ID, [TableExport("select * from t", "b", PREFIX)]) is None


def test_the_schema_goes_to_lineage_not_into_the_task_outcome():
    outcome = export_outcome({**OUTCOME, "manifest": "m", "schema": SCHEMA}, "b", PREFIX, (None, None))
    assert "schema" not in outcome and outcome["rows"] == 120
