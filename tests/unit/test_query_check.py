"""Custom queries must be ONE read-only SELECT; strings and comments never fool the check."""

from __future__ import annotations

import pytest

from airflow_rs2gcs.query_check import QueryNotAllowed, check_read_only_select


@pytest.mark.parametrize(
    "sql",
    [
        "select 1",
        "SELECT order_date, sum(amount) FROM public.orders GROUP BY 1;",
        "with t as (select 1 as x) select * from t",
        "select 'delete from x; drop table y' as note",
        'select 1 as "update"',
        "select $$insert$$ as s -- drop table x\n",
        "/* create */ select 1",
    ],
)
def test_read_only_selects_pass(sql):
    checked = check_read_only_select(sql)
    assert not checked.endswith(";") and checked in sql


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("delete from public.orders", "start with SELECT"),
        ("select 1; drop table public.orders", "more than one statement"),
        ("select * into new_table from public.orders", "INTO"),
        ("with d as (delete from t returning *) select * from d", "DELETE"),
        ("select 1 /* unterminated", "unterminated"),
        ("select 'oops", "unterminated"),
        ("", "start with SELECT"),
        ("vacuum", "start with SELECT"),
    ],
)
def test_everything_else_is_refused_with_a_reason(sql, reason):
    with pytest.raises(QueryNotAllowed, match=reason):
        check_read_only_select(sql)
