"""SQL text the sync sends to Redshift: quoted identifiers and the incremental window.

Table and column names were validated by the tenant model; they are still quoted as identifiers here
so that no name is ever read as SQL. Interval bounds come from Airflow, never from user input.
"""

from __future__ import annotations

import datetime as dt

from airflow_rs2gcs.identifiers import parse_table_name


def quote_identifier(name: str) -> str:
    """``orders`` -> ``"orders"``; embedded quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def quote_table(name: str) -> str:
    """``public.orders`` -> ``"public"."orders"``; ``analytics."a.b"`` -> ``"analytics"."a.b"``.

    The name is parsed as ``tables`` reads it (see :mod:`airflow_rs2gcs.identifiers`): plain parts are
    folded to lower case as Redshift does, quoted parts are kept as written.
    """
    parsed = parse_table_name(name)
    table = quote_identifier(parsed.table)
    return table if parsed.schema is None else f"{quote_identifier(parsed.schema)}.{table}"


def select_table(name: str) -> str:
    """The full-copy query of a table."""
    return f"SELECT * FROM {quote_table(name)}"


def timestamp_literal(moment: dt.datetime) -> str:
    """A TIMESTAMPTZ literal in UTC, e.g. ``'2026-11-24 07:00:00.000000+00'::timestamptz``."""
    return f"'{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S.%f}+00'::timestamptz"


def windowed(sql: str, cursor_column: str, start: dt.datetime, end: dt.datetime) -> str:
    """Rows of ``sql`` with ``start <= cursor_column < end`` (half-open, so intervals never overlap)."""
    column = quote_identifier(cursor_column)
    return (
        f"SELECT * FROM ({sql}) AS rs2gcs_source "
        f"WHERE {column} >= {timestamp_literal(start)} AND {column} < {timestamp_literal(end)}"
    )
