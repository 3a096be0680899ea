"""Stream a query's rows out of Redshift in batches through a server-side cursor.

``redshift_connector``'s ``cursor.execute`` of a plain SELECT reads the whole result into memory
before the first fetch. DECLARE ... CURSOR inside a transaction, then FETCH FORWARD n, keeps the
client's memory bounded by one batch. (On Redshift the cursor's result is materialised on the leader
node, and single-node clusters allow at most 1000 rows per FETCH: see ``fetch_size``.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from airflow_rs2gcs.engine.types import Column, columns_from_row_description

CURSOR_NAME = "rs2gcs_cursor"
SINGLE_NODE_MAX_FETCH = 1000


class CursorReader:
    """Reads ``sql`` batch by batch on an open DB-API connection of ``redshift_connector``.

    :param connection: an open ``redshift_connector`` connection (not in autocommit mode).
    :param sql: one SELECT; it is wrapped in ``DECLARE ... CURSOR FOR``.
    :param fetch_size: rows per FETCH FORWARD.
    """

    def __init__(self, connection: Any, sql: str, fetch_size: int) -> None:
        if fetch_size < 1:
            raise ValueError(f"fetch_size must be a positive number of rows, got {fetch_size}")
        self.connection = connection
        self.sql = sql
        self.fetch_size = fetch_size
        self.columns: list[Column] = []

    def batches(self) -> Iterator[Sequence[Sequence[Any]]]:
        """Yield lists of row tuples; ``columns`` is filled once the first FETCH has returned."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(f"DECLARE {CURSOR_NAME} NO SCROLL CURSOR FOR {self.sql}")
            while True:
                cursor.execute(f"FETCH FORWARD {self.fetch_size} FROM {CURSOR_NAME}")
                if not self.columns:
                    self.columns = columns_from_row_description(cursor.ps["row_desc"])
                rows = cursor.fetchall()
                if rows:
                    yield rows
                if len(rows) < self.fetch_size:
                    break
            cursor.execute(f"CLOSE {CURSOR_NAME}")
        finally:
            cursor.close()
            # Read-only work: end the transaction without committing anything.
            self.connection.rollback()
