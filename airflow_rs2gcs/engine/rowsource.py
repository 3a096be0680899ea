"""The row source: what the export reads a query's rows through, as Arrow record batches.

Two implementations, one interface (:class:`RowSource`):

- ``wire`` (:class:`~airflow_rs2gcs.engine.wire_source.WireRowSource`): the fast path; it takes the
  driver's DataRow messages undecoded, which needs ``redshift_connector`` internals;
- ``driver`` (:class:`~airflow_rs2gcs.engine.driver_source.DriverRowSource`): the plain path through
  the driver's public API; slower, same schema and values.

``auto`` (the default) reads through the fast path when the installed driver has what it needs and
otherwise falls back to the plain path with one warning naming the driver version: a driver upgrade
makes syncs slower, never broken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import pyarrow as pa

from airflow_rs2gcs.engine.driver_source import DriverRowSource
from airflow_rs2gcs.engine.reader import SnapshotReads
from airflow_rs2gcs.engine.settings import ExportSettings
from airflow_rs2gcs.engine.types import Column
from airflow_rs2gcs.engine.wire import UnsupportedDriverError, check_driver
from airflow_rs2gcs.engine.wire_source import WireRowSource

log = logging.getLogger(__name__)


class RowSource(Protocol):
    """Reads one query's rows as Arrow record batches; :meth:`batches` runs once.

    :attr:`columns` and :attr:`schema` are set before the first batch is yielded; :attr:`rows_read`
    and :attr:`bytes_read` count what was read so far (wire bytes on the fast path, Arrow bytes on the
    plain path). :attr:`method` says which path is reading.
    """

    @property
    def method(self) -> str: ...

    @property
    def columns(self) -> list[Column]: ...

    @property
    def schema(self) -> pa.Schema | None: ...

    @property
    def rows_read(self) -> int: ...

    @property
    def bytes_read(self) -> int: ...

    def batches(self) -> Iterator[pa.RecordBatch]: ...


class AutoRowSource:
    """The fast path, or the plain path when the fast path refuses this driver before its first batch.

    :param connection: an open ``redshift_connector`` connection (see :class:`WireRowSource`).
    :param sql: one SELECT.
    :param options: ``fetch_size``, ``batch_rows``, ``batch_bytes`` and ``snapshot``, as both row
        sources take them (a fallback runs the snapshot reads again, in its own transaction).
    """

    def __init__(self, connection: Any, sql: str, **options: Any) -> None:
        self.connection = connection
        self.sql = sql
        self.options = options
        self.source: RowSource = WireRowSource(connection, sql, **options)

    @property
    def method(self) -> str:
        """``wire`` or, after a fallback, ``driver``."""
        return self.source.method

    @property
    def columns(self) -> list[Column]:
        """The result columns (set before the first batch)."""
        return self.source.columns

    @property
    def schema(self) -> pa.Schema | None:
        """The Arrow schema (set before the first batch)."""
        return self.source.schema

    @property
    def rows_read(self) -> int:
        """Rows read so far."""
        return self.source.rows_read

    @property
    def bytes_read(self) -> int:
        """Bytes read so far."""
        return self.source.bytes_read

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Yield the batches of whichever path reads them."""
        try:
            check_driver(self.connection)
            yield from self._fast_path()
        except UnsupportedDriverError as exc:
            log.warning(
                "the fast read path is unavailable (%s); reading through the driver's public API "
                "instead (slower, same output)",
                exc,
            )
            self.source = DriverRowSource(self.connection, self.sql, **self.options)
            yield from self.source.batches()

    def _fast_path(self) -> Iterator[pa.RecordBatch]:
        batches = self.source.batches()
        first = next(batches, None)  # the fast path checks the driver before its first batch
        if first is None:
            return
        yield first
        try:
            yield from batches
        except UnsupportedDriverError as exc:  # after rows went out: falling back would repeat them
            raise RuntimeError(f"the fast read path failed after its first batch: {exc}") from exc


SOURCES: dict[str, Callable[..., RowSource]] = {
    "auto": AutoRowSource,
    "wire": WireRowSource,
    "driver": DriverRowSource,
}


def open_row_source(
    connection: Any, sql: str, settings: ExportSettings, snapshot: SnapshotReads | None = None
) -> RowSource:
    """The row source that ``settings.fetch_method`` names, reading ``sql`` on ``connection``;
    ``snapshot`` reads run in its transaction (see :class:`~airflow_rs2gcs.engine.reader.SnapshotReads`)."""
    source = SOURCES[settings.fetch_method]
    return source(
        connection,
        sql,
        fetch_size=settings.fetch_size,
        batch_rows=settings.batch_rows,
        batch_bytes=settings.batch_bytes,
        snapshot=snapshot,
    )
