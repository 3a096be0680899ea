"""RedshiftCatalogHook: what a Redshift connection can read, from catalog queries that also run on PostgreSQL.

Relations come from ``pg_class``/``pg_namespace`` (tables, views, late-binding views, materialised
views), filtered by the user's privileges: only relations in a schema the user may USE and that the
user may SELECT from are listed (``has_schema_privilege`` and ``has_table_privilege``, on Redshift and
PostgreSQL alike), so the listing names only what a sync can read. Paging is keyset-based on
``(schema, name)``: a stable order, one page in memory. ``count_relations`` counts the same set.
Each relation prints as ``tables`` accepts it (:func:`airflow_rs2gcs.identifiers.format_table_name`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

from airflow_rs2gcs.engine.types import columns_from_row_description
from airflow_rs2gcs.identifiers import format_table_name, parse_table_name

RELATION_KINDS = "('r', 'v', 'm', 'p', 'f')"
SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast', 'pg_internal', 'catalog_history')"
TIME_TYPE_OIDS = {1082: "date", 1114: "timestamp", 1184: "timestamptz"}

_READABLE = f"""
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in {RELATION_KINDS}
  and n.nspname not in {SYSTEM_SCHEMAS}
  and n.nspname not like %s
  and has_schema_privilege(n.nspname, 'USAGE')
  and has_table_privilege(quote_ident(n.nspname) || '.' || quote_ident(c.relname), 'SELECT')
"""

_PAGE_SQL = f"""
select n.nspname, c.relname, c.relkind
{_READABLE}
  and (n.nspname > %s or (n.nspname = %s and c.relname > %s))
order by n.nspname, c.relname
limit %s
"""

_COUNT_SQL = f"select count(*) {_READABLE}"
_TEMP_SCHEMAS = "pg_temp%"

_EXISTS_SQL = f"""
select has_table_privilege(quote_ident(n.nspname) || '.' || quote_ident(c.relname), 'SELECT')
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in {RELATION_KINDS} and n.nspname = %s and c.relname = %s
  and has_schema_privilege(n.nspname, 'USAGE')
"""


@dataclass(frozen=True)
class Relation:
    """A readable table or view: ``schema.name`` and its kind (``table``, ``view``, ...)."""

    schema: str
    name: str
    kind: str

    @property
    def qualified(self) -> str:
        """The name as ``tables`` accepts it: ``public.orders``, ``analytics."Mixed Case Table"``."""
        return format_table_name(self.schema, self.name)


_KINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized view", "f": "foreign table"}


def split_table_name(name: str) -> tuple[str, str]:
    """``public.orders`` -> ``("public", "orders")``; an unqualified name is in ``public``.

    Parsed as ``tables`` reads it: ``analytics."Mixed Case Table"`` -> ``("analytics", "Mixed Case Table")``.
    """
    parsed = parse_table_name(name)
    return parsed.schema or "public", parsed.table


class RedshiftCatalogHook(RedshiftSQLHook):
    """A ``RedshiftSQLHook`` that lists and checks what its connection can read.

    :param redshift_conn_id: the Airflow connection of type ``redshift``.
    """

    def iter_relations(self, page_size: int = 100, limit: int | None = None) -> Iterator[list[Relation]]:
        """Yield pages of readable relations in ``(schema, name)`` order, at most ``limit`` in all."""
        after, seen = ("", ""), 0
        while limit is None or seen < limit:
            size = page_size if limit is None else min(page_size, limit - seen)
            rows = self.get_records(_PAGE_SQL, (_TEMP_SCHEMAS, after[0], after[0], after[1], size))
            if not rows:
                return
            page = [Relation(schema, name, _KINDS.get(str(kind), str(kind))) for schema, name, kind in rows]
            seen += len(page)
            after = (page[-1].schema, page[-1].name)
            yield page
            if len(rows) < size:
                return

    def count_relations(self) -> int:
        """How many relations ``iter_relations`` would list without a limit."""
        return int(self.get_first(_COUNT_SQL, (_TEMP_SCHEMAS,))[0])

    def server_version(self) -> str:
        """``select version()``: proves the connection works end to end."""
        return str(self.get_first("select version()")[0])

    def can_read(self, table: str) -> bool:
        """Whether ``schema.table`` exists and the connection's user may SELECT from it."""
        row = self.get_first(_EXISTS_SQL, split_table_name(table))
        return bool(row and row[0])

    def result_columns(self, sql: str) -> dict[str, int]:
        """Column name -> type OID of a query's result, planned with LIMIT 0 (no rows are read)."""
        connection = self.get_conn()
        try:
            cursor = connection.cursor()
            cursor.execute(f"SELECT * FROM ({sql}) AS rs2gcs_probe LIMIT 0")
            if cursor.ps is None:  # execute() keeps the statement's row description there
                raise RuntimeError("the driver kept no row description of the query")
            columns = columns_from_row_description(cursor.ps["row_desc"])
            cursor.close()
            return {c.name: c.type_oid for c in columns}
        finally:
            connection.rollback()
            connection.close()
