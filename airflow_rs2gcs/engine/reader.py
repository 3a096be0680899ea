"""The read-only server-side cursor that every row source reads through.

``redshift_connector``'s ``cursor.execute`` of a plain SELECT reads the whole result into memory
before the first fetch. Here the query runs as ``DECLARE ... NO SCROLL CURSOR`` inside a transaction
and rows come with ``FETCH FORWARD n``, so the client holds at most one batch. On Redshift the
cursor's result is materialised on the leader node, and single-node clusters allow at most 1000 rows
per FETCH (:data:`airflow_rs2gcs.engine.settings.SINGLE_NODE_MAX_FETCH`).

The transaction is opened ``READ ONLY`` (valid on Redshift and PostgreSQL): the query gate refuses
side-effecting SQL by name, but only the server can stop a write hidden in a user-defined function.
It is also ``ISOLATION LEVEL REPEATABLE READ``, so every statement in it reads one snapshot: the
reconciliation count and the primary key set (:mod:`airflow_rs2gcs.engine.snapshot_reads`) see exactly
the rows the cursor reads. Redshift accepts the clause and runs every transaction serializable anyway;
PostgreSQL (the local stand-in) would otherwise give each statement its own snapshot (READ COMMITTED).

The session runs with ``DateStyle`` ISO (the text form the decoders parse) and time zone UTC (so an
incremental window compares naive TIMESTAMP and DATE cursor columns as UTC); both are undone with the
transaction, which is always rolled back: the export only reads.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import pyarrow as pa

from airflow_rs2gcs.engine.types import Column

log = logging.getLogger(__name__)

BEGIN_READ_ONLY = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
SESSION_SETTINGS = ("SET datestyle TO 'ISO, MDY'", "SET timezone TO 'UTC'")


class SnapshotReads(Protocol):
    """Statements that run in the row source's transaction, so in the snapshot its rows come from.

    :meth:`before` runs before the cursor is declared, :meth:`after` once it is closed (Redshift allows
    one open cursor per session); ``source`` is the row source, for reads of its own kind.
    """

    def before(self, cursor: Any) -> None: ...

    def after(self, cursor: Any, source: CursorRowSource) -> None: ...


class CursorRowSource:
    """What every row source holds: the connection, the query, its sizes, and what it read so far.

    :param connection: an open ``redshift_connector`` connection with no transaction open; the source
        owns it while it reads (see :func:`read_only_transaction`).
    :param sql: one SELECT.
    :param fetch_size: rows per ``FETCH FORWARD`` (at most 1000 on single-node clusters).
    :param batch_rows: rows per record batch; the last may be smaller.
    :param batch_bytes: a record batch also ends once this many received bytes are waiting (where the
        source sees bytes).
    :param snapshot: optional reads in the same transaction, before and after the rows (see
        :class:`SnapshotReads`).
    """

    def __init__(
        self,
        connection: Any,
        sql: str,
        fetch_size: int = 10_000,
        batch_rows: int = 10_000,
        batch_bytes: int = 8 * 1024 * 1024,
        snapshot: SnapshotReads | None = None,
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
        self.snapshot = snapshot

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Yield the result as record batches; :attr:`columns` and :attr:`schema` are set before the first.

        One read-only transaction holds the snapshot reads and the cursor (see :class:`SnapshotReads`).
        """
        with read_only_transaction(self.connection) as cursor:
            if self.snapshot is not None:
                self.snapshot.before(cursor)
            yield from self.read_in(cursor)
            if self.snapshot is not None:
                self.snapshot.after(cursor, self)

    def read_in(self, cursor: Any) -> Iterator[pa.RecordBatch]:
        """Yield the rows of :attr:`sql` through a cursor in ``cursor``'s open transaction."""
        raise NotImplementedError

    def sibling(self, sql: str) -> CursorRowSource:
        """A row source of the same kind and sizes for another query (no snapshot reads of its own)."""
        return type(self)(
            self.connection,
            sql,
            fetch_size=self.fetch_size,
            batch_rows=self.batch_rows,
            batch_bytes=self.batch_bytes,
        )


@contextmanager
def read_only_transaction(connection: Any) -> Iterator[Any]:
    """A cursor inside a ``READ ONLY`` transaction with the engine's session settings.

    The transaction is rolled back and the connection's autocommit setting restored on the way out,
    whatever happened inside.
    """
    cursor = connection.cursor()
    # In autocommit mode the driver sends no plain BEGIN of its own, so ours opens the transaction.
    autocommit, connection.autocommit = connection.autocommit, True
    try:
        cursor.execute(BEGIN_READ_ONLY)
        for statement in SESSION_SETTINGS:
            cursor.execute(statement)
        yield cursor
    finally:
        cursor.close()
        _roll_back(connection)
        connection.autocommit = autocommit


def declare_cursor(cursor: Any, sql: str) -> str:
    """``DECLARE`` a server-side cursor for ``sql`` on ``cursor``'s transaction; returns its name."""
    name = f"rs2gcs_{uuid.uuid4().hex[:16]}"
    cursor.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}")
    return name


def fetch_statement(name: str, fetch_size: int) -> str:
    """The ``FETCH FORWARD`` of ``fetch_size`` rows from the cursor ``name``."""
    return f"FETCH FORWARD {fetch_size} FROM {name}"


def _roll_back(connection: Any) -> None:
    try:
        connection.rollback()
    except Exception as exc:
        # The connection is usually already broken and the error that broke it is on its way up;
        # a traceback here would repeat it twice more in the task log.
        log.warning("could not roll back the export's read transaction: %s: %s", type(exc).__name__, exc)
