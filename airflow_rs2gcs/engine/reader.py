"""Stream a query's rows out of Redshift as Arrow record batches through a server-side cursor.

``redshift_connector``'s ``cursor.execute`` of a plain SELECT reads the whole result into memory
before the first fetch. Here the query runs as ``DECLARE ... NO SCROLL CURSOR`` inside a transaction
and rows come with ``FETCH FORWARD n``, so the client holds at most one batch. On Redshift the
cursor's result is materialised on the leader node, and single-node clusters allow at most 1000 rows
per FETCH (:data:`SINGLE_NODE_MAX_FETCH`). Rows are decoded ``batch_rows`` at a time (fewer when
``batch_bytes`` of wide rows arrived first): small batches keep the decoder's scratch memory small.

The transaction is opened ``READ ONLY`` (``BEGIN READ ONLY``, valid on Redshift and PostgreSQL): the
query gate refuses side-effecting SQL by name, but only the server can stop a write hidden in a
user-defined function. The session runs with ``DateStyle`` ISO (the text form the decoder parses) and
time zone UTC (so an incremental window compares naive TIMESTAMP and DATE cursor columns as UTC); both
are undone with the transaction, which is always rolled back: the export only reads.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from airflow_rs2gcs.engine.datarows import MAX_BATCH_BYTES, split_rows
from airflow_rs2gcs.engine.decode import decode_batch
from airflow_rs2gcs.engine.settings import SINGLE_NODE_MAX_FETCH  # noqa: F401 - documented here
from airflow_rs2gcs.engine.types import Column, columns_from_row_description, schema_of
from airflow_rs2gcs.engine.wire import RawRowCapture, UnsupportedDriverError, result_formats

log = logging.getLogger(__name__)

BEGIN_READ_ONLY = "BEGIN READ ONLY"
SESSION_SETTINGS = ("SET datestyle TO 'ISO, MDY'", "SET timezone TO 'UTC'")


class CursorReader:
    """Reads ``sql`` as Arrow record batches on an open ``redshift_connector`` connection.

    :param connection: an open ``redshift_connector`` connection with no transaction open; the reader
        owns it while :meth:`batches` runs (it opens its own read-only transaction and restores the
        connection's autocommit setting afterwards).
    :param sql: one SELECT; it is wrapped in ``DECLARE ... CURSOR FOR``.
    :param fetch_size: rows per ``FETCH FORWARD`` (at most 1000 on single-node clusters).
    :param batch_rows: rows per record batch (FETCH results are joined or cut); the last may be smaller.
    :param batch_bytes: a record batch also ends once this many wire bytes are waiting.
    """

    def __init__(
        self,
        connection: Any,
        sql: str,
        fetch_size: int = 10_000,
        batch_rows: int = 10_000,
        batch_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        for name, value in (
            ("fetch_size", fetch_size),
            ("batch_rows", batch_rows),
            ("batch_bytes", batch_bytes),
        ):
            if value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        self.connection = connection
        self.sql = sql
        self.fetch_size = fetch_size
        self.batch_rows = batch_rows
        self.batch_bytes = batch_bytes
        self.columns: list[Column] = []
        self.schema: pa.Schema | None = None
        self.rows_read = 0
        self.bytes_read = 0

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Yield the result as record batches; :attr:`columns` and :attr:`schema` are set before the first."""
        cursor = self.connection.cursor()
        name = f"rs2gcs_{uuid.uuid4().hex[:16]}"
        # In autocommit mode the driver sends no plain BEGIN of its own, so ours opens the transaction.
        autocommit, self.connection.autocommit = self.connection.autocommit, True
        try:
            cursor.execute(BEGIN_READ_ONLY)
            for statement in SESSION_SETTINGS:
                cursor.execute(statement)
            cursor.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {self.sql}")
            with RawRowCapture(self.connection) as capture:
                yield from self._fetch_all(cursor, capture, name)
            cursor.execute(f"CLOSE {name}")
        finally:
            cursor.close()
            self._end_transaction()
            self.connection.autocommit = autocommit

    def _fetch_all(self, cursor: Any, capture: RawRowCapture, name: str) -> Iterator[pa.RecordBatch]:
        pending: list[bytes] = []
        pending_bytes = 0
        while True:
            cursor.execute(f"FETCH FORWARD {self.fetch_size} FROM {name}")
            if self.schema is None:
                self._describe(cursor)
            rows = capture.take()
            last = len(rows) < self.fetch_size
            size = sum(map(len, rows))
            self.bytes_read += size
            pending += rows
            pending_bytes += size
            del rows
            while pending and (len(pending) >= self.batch_rows or last or pending_bytes >= self.batch_bytes):
                box = [pending[: self.batch_rows]]
                pending = pending[self.batch_rows :]
                pending_bytes = sum(map(len, pending))
                yield from self._decode(box)
            if last:
                return

    def _describe(self, cursor: Any) -> None:
        self.columns = columns_from_row_description(cursor.ps["row_desc"])
        self.schema = schema_of(self.columns)
        bound = result_formats(cursor)
        expected = [int(c.wire_format) for c in self.columns]
        if bound != expected:
            raise UnsupportedDriverError(
                f"the driver bound result formats {bound}, the engine asked for {expected}"
            )

    def _decode(self, box: list[list[bytes]]) -> list[pa.RecordBatch]:
        """Decode the rows handed over in ``box`` (emptied, so that they are freed before the caller
        yields the batch: holding them would cost one more batch of memory)."""
        assert self.schema is not None
        bodies = box.pop()
        if len(bodies) > 1 and sum(map(len, bodies)) > MAX_BATCH_BYTES:  # huge rows: decode in halves
            first, second = [bodies[: len(bodies) // 2]], [bodies[len(bodies) // 2 :]]
            del bodies
            return self._decode(first) + self._decode(second)
        rows = split_rows(bodies, len(self.columns))
        del bodies
        batch = decode_batch(rows, self.columns, self.schema)
        del rows
        self.rows_read += batch.num_rows
        return [batch]

    def _end_transaction(self) -> None:
        try:
            self.connection.rollback()
        except Exception as exc:
            # The connection is usually already broken and the error that broke it is on its way up;
            # a traceback here would repeat it twice more in the task log.
            log.warning("could not roll back the export's read transaction: %s: %s", type(exc).__name__, exc)
