"""Object names, the Asset path of a table, and the incremental window's SQL."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_rs2gcs.engine.paths import check_object_prefix, dataset_root, interval_partition, table_root
from airflow_rs2gcs.sql import quote_table, windowed

START = dt.datetime(2026, 11, 22, 0, 56, tzinfo=dt.UTC)
END = dt.datetime(2026, 11, 23, 0, 56, tzinfo=dt.UTC)


def test_dataset_root_strips_the_hive_partitions():
    prefix = f"{table_root('redshift', 'acme', 'public.orders')}/{interval_partition(START, END)}"
    assert prefix == "redshift/acme/public.orders/dt=2026-11-22/interval=20261122T005600Z_20261123T005600Z"
    assert dataset_root(prefix) == "redshift/acme/public.orders"
    assert dataset_root("exports/orders") == "exports/orders"
    assert dataset_root("a=1") == "a=1"


@pytest.mark.parametrize("bad", ["", "/", "../x", "a/../b", "/abs", "a//b", "a/ b"])
def test_object_prefixes_cannot_escape(bad):
    with pytest.raises(ValueError, match="not allowed"):
        check_object_prefix(bad)


def test_windowed_query_is_half_open_in_utc():
    sql = windowed('SELECT * FROM "public"."orders"', "updated_at", START, END)
    assert sql == (
        'SELECT * FROM (SELECT * FROM "public"."orders") AS rs2gcs_source WHERE "updated_at" >= '
        "'2026-11-22 00:56:00.000000+00'::timestamptz AND \"updated_at\" < "
        "'2026-11-23 00:56:00.000000+00'::timestamptz"
    )
    assert quote_table('"odd""name".t') == '"odd""name"."t"'
    assert quote_table('analytics."a.b"') == '"analytics"."a.b"'
    assert quote_table("Sales.Orders") == '"sales"."orders"'  # plain names fold to lower case
