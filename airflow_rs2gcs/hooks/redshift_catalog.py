"""RedshiftCatalogHook: what a Redshift connection can read, from catalog queries that also run on PostgreSQL.

Relations come from ``pg_class``/``pg_namespace`` (tables, views, late-binding views, materialised
views), filtered by the user's privileges: only relations in a schema the user may USE and that the
user may SELECT from are listed (``has_schema_privilege`` and ``has_table_privilege``, on Redshift and
PostgreSQL alike), so the listing names only what a sync can read. Paging is keyset-based on
``(schema, name)``: a stable order, one page in memory. ``count_relations`` counts the same set.
Each relation prints as ``tables`` accepts it (:func:`airflow_rs2gcs.identifiers.format_table_name`).

The widget page browses the same listing one page at a time (:meth:`RedshiftCatalogHook.relations_page`),
filtered by a search text (ILIKE on schema or name) and a kind, resumed from an opaque page token that
holds the last ``(schema, name)`` seen; :meth:`RedshiftCatalogHook.columns` feeds its cursor-column picker.

Row estimates (:meth:`RedshiftCatalogHook.row_estimates`, for grouping small tables into one sync task)
are the one place where the two dialects differ: Redshift keeps them in ``svv_table_info`` (a table it
does not list there is empty), PostgreSQL (the local stack) in ``pg_class.reltuples``, which is ``-1``
until the table is first analysed; the size on disk then stands in. Views have no estimate.
"""

from __future__ import annotations

import base64
import binascii
import json
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

# The page's filters: %s-bound search text (ILIKE on schema or name, '' for none), and the relkinds of a
# kind filter (constants of KIND_FILTERS, never user text).
_FILTERS = """
  and (%s = '' or n.nspname ilike %s or c.relname ilike %s)
  and c.relkind in {kinds}
"""
_FILTERED_PAGE_SQL = f"""
select n.nspname, c.relname, c.relkind
{_READABLE}{_FILTERS}
  and (n.nspname > %s or (n.nspname = %s and c.relname > %s))
order by n.nspname, c.relname
limit %s
"""
_FILTERED_COUNT_SQL = f"select count(*) {_READABLE}{_FILTERS}"

_COLUMNS_SQL = """
select a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid
from pg_catalog.pg_attribute a
join pg_catalog.pg_class c on c.oid = a.attrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped
order by a.attnum
"""
_TEMP_SCHEMAS = "pg_temp%"

_EXISTS_SQL = f"""
select has_table_privilege(quote_ident(n.nspname) || '.' || quote_ident(c.relname), 'SELECT')
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in {RELATION_KINDS} and n.nspname = %s and c.relname = %s
  and has_schema_privilege(n.nspname, 'USAGE')
"""

# Relation kind per (schema, name) for the schemas asked about: only tables have a row estimate.
_KINDS_IN_SCHEMAS_SQL = """
select n.nspname, c.relname, c.relkind
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in {relation_kinds} and n.nspname in ({schemas})
"""
# Redshift: svv_table_info is not joined with pg_class, since Redshift refuses queries that mix
# leader-node catalog tables with the system views computed on the compute nodes.
_REDSHIFT_ESTIMATES_SQL = """
select "schema", "table", coalesce(estimated_visible_rows, tbl_rows)
from svv_table_info
where "schema" in ({schemas})
"""
# PostgreSQL: reltuples is -1 until the first ANALYZE; the heap's size / 32 bytes (about the least a
# row takes with its header and line pointer) stands in, so the estimate errs toward "large", the safe
# side: a large table only loses the sharing of a task.
_POSTGRES_ESTIMATES_SQL = """
select n.nspname, c.relname,
       case when c.reltuples >= 0 then c.reltuples::bigint else pg_relation_size(c.oid) / 32 end
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'm') and n.nspname in ({schemas})
"""
_TABLE_KINDS = frozenset({"r", "m"})


def is_redshift_version(version: str) -> bool:
    """Whether ``select version()`` came from Redshift (it names itself after a PostgreSQL 8.0.2 banner)."""
    return "redshift" in version.lower()


def estimates_from_rows(
    wanted: dict[tuple[str, str], str],
    kinds: dict[tuple[str, str], str],
    rows: dict[tuple[str, str], int | None],
    missing_table_is_empty: bool,
) -> dict[str, int | None]:
    """Table name -> estimated rows (``None``: unknown) from the catalog's answers.

    :param wanted: ``(schema, name)`` -> the table's name as the tenant spells it.
    :param kinds: ``(schema, name)`` -> relkind of the relations that exist.
    :param rows: ``(schema, name)`` -> the catalog's estimate.
    :param missing_table_is_empty: Redshift's ``svv_table_info`` leaves empty tables out.
    """
    estimates: dict[str, int | None] = {}
    for key, name in wanted.items():
        kind = kinds.get(key)
        if kind not in _TABLE_KINDS:
            estimates[name] = None  # a view, a foreign table, or nothing readable by that name
        elif key in rows and rows[key] is not None:
            estimates[name] = max(int(rows[key] or 0), 0)
        else:
            estimates[name] = 0 if missing_table_is_empty else None
    return estimates


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
# The page's kind filter -> relkinds ("" = every kind the listing shows).
KIND_FILTERS: dict[str, str] = {"": RELATION_KINDS, "table": "('r', 'p', 'f')", "view": "('v', 'm')"}


class InvalidPageToken(ValueError):
    """A page token that :func:`encode_page_token` did not make."""


def encode_page_token(schema: str, name: str) -> str:
    """An opaque token for "the page after ``schema.name``": URL-safe base64 of ``[schema, name]``."""
    raw = json.dumps([schema, name], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_page_token(token: str) -> tuple[str, str]:
    """The ``(schema, name)`` a token resumes after; ``InvalidPageToken`` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, ValueError):
        raise InvalidPageToken(f"{token!r} is not a page token of this listing") from None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise InvalidPageToken(f"{token!r} is not a page token of this listing")
    return value[0], value[1]


def search_pattern(q: str) -> str:
    """An ILIKE pattern matching ``q`` anywhere, with ``%``, ``_`` and ``\\`` taken literally."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%" if escaped else ""


@dataclass(frozen=True)
class Column:
    """A column of a relation: its name, its type as the catalog prints it, and its type OID."""

    name: str
    type: str
    type_oid: int

    @property
    def cursor_candidate(self) -> bool:
        """Whether an incremental table may window on it (the types ``rs2gcs_configure`` accepts)."""
        return self.type_oid in TIME_TYPE_OIDS


@dataclass(frozen=True)
class RelationPage:
    """One page of the listing: its relations and the token of the next page (``None``: the last)."""

    relations: list[Relation]
    next_page_token: str | None


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

    def relations_page(
        self, page_size: int = 100, page_token: str | None = None, q: str = "", kind: str = ""
    ) -> RelationPage:
        """One page of readable relations matching ``q`` and ``kind``, after ``page_token``."""
        return self.browse(page_size, page_token, q, kind, with_total=False)[0]

    def count_matching(self, q: str = "", kind: str = "") -> int:
        """How many relations :meth:`relations_page` would list across all pages with these filters."""
        pattern, sql = search_pattern(q.strip()), _FILTERED_COUNT_SQL.format(kinds=KIND_FILTERS[kind])
        return int(self.get_first(sql, (_TEMP_SCHEMAS, pattern, pattern, pattern))[0])

    def browse(
        self, page_size: int, page_token: str | None, q: str, kind: str, with_total: bool = True
    ) -> tuple[RelationPage, int | None]:
        """A page (as :meth:`relations_page`) and, with ``with_total``, the total, on ONE connection.

        Reads ``page_size + 1`` rows so that the last page has no next token.
        """
        after = decode_page_token(page_token) if page_token else ("", "")
        pattern, kinds = search_pattern(q.strip()), KIND_FILTERS[kind]
        filters = (_TEMP_SCHEMAS, pattern, pattern, pattern)
        connection = self.get_conn()
        try:
            cursor = connection.cursor()
            cursor.execute(
                _FILTERED_PAGE_SQL.format(kinds=kinds),
                (*filters, after[0], after[0], after[1], page_size + 1),
            )
            rows = cursor.fetchall()
            total = None
            if with_total:
                cursor.execute(_FILTERED_COUNT_SQL.format(kinds=kinds), filters)
                (count,) = cursor.fetchone() or (0,)
                total = int(count)
            cursor.close()
        finally:
            connection.rollback()
            connection.close()
        page = [Relation(schema, name, _KINDS.get(str(k), str(k))) for schema, name, k in rows[:page_size]]
        more = len(rows) > page_size and page
        next_token = encode_page_token(page[-1].schema, page[-1].name) if more else None
        return RelationPage(page, next_token), total

    def columns(self, table: str) -> list[Column]:
        """The columns of ``schema.table`` (as ``tables`` spells it), in table order; ``[]`` if none."""
        rows = self.get_records(_COLUMNS_SQL, split_table_name(table))
        return [Column(str(name), str(type_name), int(oid)) for name, type_name, oid in rows]

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

    def is_redshift(self) -> bool:
        """Whether the server is Redshift; the local stack is PostgreSQL behind the Redshift driver."""
        return is_redshift_version(self.server_version())

    def row_estimates(self, tables: list[str]) -> dict[str, int | None]:
        """Table name (as ``tables`` spells it) -> the catalog's estimated row count, ``None`` if unknown.

        Three short catalog queries on one connection, whatever the number of tables.
        """
        wanted = {split_table_name(name): name for name in tables}
        if not wanted:
            return {}
        schemas = sorted({schema for schema, _ in wanted})
        placeholders = ", ".join(["%s"] * len(schemas))
        connection = self.get_conn()
        try:
            cursor = connection.cursor()
            cursor.execute("select version()")
            redshift = is_redshift_version(str((cursor.fetchone() or ("",))[0]))
            cursor.execute(
                _KINDS_IN_SCHEMAS_SQL.format(relation_kinds=RELATION_KINDS, schemas=placeholders), schemas
            )
            kinds = {(str(s), str(n)): str(k) for s, n, k in cursor.fetchall()}
            sql = _REDSHIFT_ESTIMATES_SQL if redshift else _POSTGRES_ESTIMATES_SQL
            cursor.execute(sql.format(schemas=placeholders), schemas)
            rows = {(str(s), str(n)): (None if r is None else int(r)) for s, n, r in cursor.fetchall()}
            cursor.close()
        finally:
            connection.rollback()
            connection.close()
        return estimates_from_rows(wanted, kinds, rows, missing_table_is_empty=redshift)
