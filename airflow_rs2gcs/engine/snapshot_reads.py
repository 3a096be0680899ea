"""Reads in the export's own snapshot: the reconciliation count and the primary key set.

Both run inside the row source's read-only transaction (see
:class:`~airflow_rs2gcs.engine.reader.SnapshotReads`), which is REPEATABLE READ, so they see the same
rows as the cursor that the data comes from:

- ``verify: "count"``: ``SELECT COUNT(*)`` of the same (windowed) query, before the cursor; the export
  fails when it wrote another number of rows (:func:`check_count`);
- ``capture_deletes``: the table's whole current primary key set (not windowed), read after the data
  cursor is closed (Redshift allows one open cursor per session) through a row source of the same
  kind, and handed batch by batch to a consumer that writes the ``_keys/`` objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from airflow_rs2gcs.engine.reader import CursorRowSource


class ReconciliationError(RuntimeError):
    """The export wrote another number of rows than the source held in the same snapshot."""


def count_query(sql: str) -> str:
    """The row count of ``sql``."""
    return f"SELECT COUNT(*) FROM ({sql}) AS rs2gcs_count"


def check_count(source_rows: int | None, exported_rows: int, table: str | None = None) -> None:
    """Raise :class:`ReconciliationError` unless the export wrote ``source_rows`` rows."""
    if source_rows is not None and source_rows != exported_rows:
        what = f"{table}: " if table else ""
        raise ReconciliationError(
            f"{what}verify 'count' failed: the source holds {source_rows} row(s) in the export's snapshot, "
            f"the export wrote {exported_rows}; nothing was published"
        )


# Called with the key reader (a row source: its columns and schema) and its batches.
KeysConsumer = Callable[[Any, Iterator[pa.RecordBatch]], None]


class ContractReads:
    """The snapshot reads an export asked for: a count of ``count_sql`` and/or the key set of ``keys_sql``.

    :param count_sql: the query to count (the export's own, windowed), or ``None``.
    :param keys_sql: the query of the primary key set, or ``None``.
    :param consume_keys: called once with the key reader and its batches, inside the transaction.
    """

    def __init__(
        self,
        count_sql: str | None = None,
        keys_sql: str | None = None,
        consume_keys: KeysConsumer | None = None,
    ) -> None:
        if keys_sql is not None and consume_keys is None:
            raise ValueError("keys_sql needs consume_keys")
        self.count_sql = count_sql
        self.keys_sql = keys_sql
        self.consume_keys = consume_keys
        self.source_rows: int | None = None

    def before(self, cursor: Any) -> None:
        if self.count_sql is not None:
            cursor.execute(count_query(self.count_sql))
            row = cursor.fetchone()
            self.source_rows = int(row[0])

    def after(self, cursor: Any, source: CursorRowSource) -> None:
        if self.keys_sql is not None and self.consume_keys is not None:
            keys = source.sibling(self.keys_sql)
            self.consume_keys(keys, keys.read_in(cursor))
