"""The fast row source: DataRow messages taken off the driver undecoded and decoded column by column.

:class:`~airflow_rs2gcs.engine.wire.RawRowCapture` collects each FETCH's rows as the bytes the
server sent, in the result formats the engine chose (fixed-width types binary, the rest text);
:mod:`airflow_rs2gcs.engine.decode` turns ``batch_rows`` of them at a time (fewer when ``batch_bytes``
of wide rows arrived first) into an Arrow record batch. Small batches keep the decoder's scratch
memory small. It relies on ``redshift_connector`` internals (see :mod:`airflow_rs2gcs.engine.wire`)
and raises :class:`~airflow_rs2gcs.engine.wire.UnsupportedDriverError` before its first batch when
the installed driver lacks them; :mod:`airflow_rs2gcs.engine.rowsource` then falls back to the plain
driver path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from airflow_rs2gcs.engine.datarows import MAX_BATCH_BYTES, split_rows
from airflow_rs2gcs.engine.decode import decode_batch
from airflow_rs2gcs.engine.reader import (
    CursorRowSource,
    declare_cursor,
    fetch_statement,
)
from airflow_rs2gcs.engine.types import columns_from_row_description, schema_of
from airflow_rs2gcs.engine.wire import RawRowCapture, UnsupportedDriverError, result_formats, row_description


class WireRowSource(CursorRowSource):
    """Reads ``sql`` as Arrow record batches on an open ``redshift_connector`` connection (fast path).

    :param connection: an open ``redshift_connector`` connection with no transaction open; the source
        owns it while :meth:`batches` runs (it opens its own read-only transaction and restores the
        connection's autocommit setting afterwards).
    :param sql: one SELECT; it is wrapped in ``DECLARE ... CURSOR FOR``.
    :param fetch_size: rows per ``FETCH FORWARD`` (at most 1000 on single-node clusters).
    :param batch_rows: rows per record batch (FETCH results are joined or cut); the last may be smaller.
    :param batch_bytes: a record batch also ends once this many wire bytes are waiting.
    """

    method = "wire"

    def read_in(self, cursor: Any) -> Iterator[pa.RecordBatch]:
        """Yield the result as record batches; :attr:`columns` and :attr:`schema` are set before the first."""
        name = declare_cursor(cursor, self.sql)
        with RawRowCapture(self.connection) as capture:
            yield from self._fetch_all(cursor, capture, name)
        cursor.execute(f"CLOSE {name}")

    def _fetch_all(self, cursor: Any, capture: RawRowCapture, name: str) -> Iterator[pa.RecordBatch]:
        pending: list[bytes] = []
        pending_bytes = 0
        fetch = fetch_statement(name, self.fetch_size)
        while True:
            cursor.execute(fetch)
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
        self.columns = columns_from_row_description(row_description(cursor))
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
