"""The data contract of one export: which columns leave Redshift, which are hashed, what drift is allowed.

Column selection happens in SQL (the query is wrapped in a projection of quoted names), so excluded
columns are never read. Which columns a query has is learned from a ``LIMIT 0`` probe in a read-only
transaction (no rows are read); the probe is made only when the contract needs it before the export
(``exclude_columns``, ``columns``, ``hash_columns`` or ``on_schema_change='fail'``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from airflow_rs2gcs.engine.types import Column

OnSchemaChange = Literal["evolve", "fail"]
ON_SCHEMA_CHANGE: tuple[str, ...] = ("evolve", "fail")
PROBE_ALIAS = "rs2gcs_probe"
PROJECTION_ALIAS = "rs2gcs_columns"


class ContractError(ValueError):
    """A contract that does not fit the query's columns (an unknown name, a hashed column not exported)."""


@dataclass(frozen=True)
class DataContract:
    """What an export keeps of its query's columns and how it treats a schema change.

    :param on_schema_change: ``evolve`` (export and record the difference) or ``fail`` (export nothing).
    :param columns: keep only these, in this order (``None``: every column).
    :param exclude_columns: drop these.
    :param hash_columns: replace each value by the hex HMAC-SHA256 of its text form, keyed by ``hash_key``.
    :param hash_key: the HMAC key (never written anywhere; masked in logs by whoever read it).
    """

    on_schema_change: OnSchemaChange = "evolve"
    columns: tuple[str, ...] | None = None
    exclude_columns: tuple[str, ...] = ()
    hash_columns: tuple[str, ...] = ()
    hash_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        problems = contract_problems(
            self.on_schema_change, self.columns, self.exclude_columns, self.hash_columns
        )
        if self.hash_columns and not self.hash_key:
            problems.append("hash_columns needs a hash key (hash_key_conn_id: a connection with a password)")
        if problems:
            raise ContractError("; ".join(problems))

    @property
    def needs_probe(self) -> bool:
        """Whether the query's columns must be known before the export starts."""
        return bool(
            self.columns is not None
            or self.exclude_columns
            or self.hash_columns
            or self.on_schema_change == "fail"
        )

    def selected(self, available: Sequence[str]) -> list[str]:
        """The exported column names, in output order; raises :class:`ContractError` on unknown names."""
        unknown = [
            f"{key} {name!r}"
            for key, names in (
                ("columns", self.columns or ()),
                ("exclude_columns", self.exclude_columns),
                ("hash_columns", self.hash_columns),
            )
            for name in names
            if name not in available
        ]
        if unknown:
            raise ContractError(
                f"unknown column(s): {', '.join(unknown)}; the query's columns are {list(available)}"
            )
        if self.columns is not None:
            return list(self.columns)
        return [name for name in available if name not in self.exclude_columns]

    def projection(self, sql: str, available: Sequence[str]) -> str:
        """``sql`` itself when every column is kept in order, else a SELECT of the kept columns."""
        from airflow_rs2gcs.sql import quote_identifier

        kept = self.selected(available)
        if kept == list(available):
            return sql
        names = ", ".join(quote_identifier(name) for name in kept)
        return f"SELECT {names} FROM ({sql}) AS {PROJECTION_ALIAS}"


def contract_problems(
    on_schema_change: Any,
    columns: Sequence[str] | None,
    exclude_columns: Sequence[str],
    hash_columns: Sequence[str],
) -> list[str]:
    """The contract's problems that need no database: bad values, both column keys, unexported hashes."""
    problems = []
    if on_schema_change not in ON_SCHEMA_CHANGE:
        problems.append(f"on_schema_change {on_schema_change!r} is not allowed; allowed: 'evolve' or 'fail'")
    if columns is not None and exclude_columns:
        problems.append("columns and exclude_columns are given together; give one of them")
    if columns is not None and not columns:
        problems.append("columns is empty; give at least one column, or null for every column")
    for key, names in (
        ("columns", columns or ()),
        ("exclude_columns", exclude_columns),
        ("hash_columns", hash_columns),
    ):
        duplicates = sorted({n for n in names if list(names).count(n) > 1})
        if duplicates:
            problems.append(f"{key} lists {duplicates} more than once")
    dropped = [n for n in hash_columns if (columns is not None and n not in columns) or n in exclude_columns]
    if dropped:
        problems.append(
            f"hash_columns {dropped} are not exported; a hashed column must be among the exported ones"
        )
    return problems


def unexported_keys(
    primary_key: Sequence[str], columns: Sequence[str] | None, exclude_columns: Sequence[str]
) -> str | None:
    """The problem of primary key columns left out of the data (capture_deletes' key set is anti-joined
    against the exported rows on them), or ``None``."""
    dropped = [n for n in primary_key if (columns is not None and n not in columns) or n in exclude_columns]
    if not dropped:
        return None
    return (
        f"primary_key columns {dropped} are not exported; capture_deletes' key set is matched against "
        "the exported rows on them, so a key column must be exported (hash it instead of excluding it)"
    )


def hashed(columns: Sequence[Column], hash_columns: Sequence[str]) -> list[Column]:
    """The output columns: hashed ones become strings (their Redshift type stays recorded)."""
    return [dataclasses.replace(c, arrow_type=pa.string()) if c.name in hash_columns else c for c in columns]


def probe_columns(connection: Any, sql: str) -> list[Column]:
    """The result columns of ``sql``, planned with ``LIMIT 0`` in a read-only transaction (no rows read)."""
    from airflow_rs2gcs.engine.reader import read_only_transaction
    from airflow_rs2gcs.engine.types import columns_from_row_description

    with read_only_transaction(connection) as cursor:
        cursor.execute(f"SELECT * FROM ({sql}) AS {PROBE_ALIAS} LIMIT 0")
        if cursor.ps is None:  # execute() keeps the statement's row description there
            raise RuntimeError("the driver kept no row description of the query")
        return columns_from_row_description(cursor.ps["row_desc"])
