"""The read-only server-side cursor that every row source reads through.

``redshift_connector``'s ``cursor.execute`` of a plain SELECT reads the whole result into memory
before the first fetch. Here the query runs as ``DECLARE ... NO SCROLL CURSOR`` inside a transaction
and rows come with ``FETCH FORWARD n``, so the client holds at most one batch. On Redshift the
cursor's result is materialised on the leader node, and single-node clusters allow at most 1000 rows
per FETCH (:data:`airflow_rs2gcs.engine.settings.SINGLE_NODE_MAX_FETCH`).

The transaction is opened ``READ ONLY`` (``BEGIN READ ONLY``, valid on Redshift and PostgreSQL): the
query gate refuses side-effecting SQL by name, but only the server can stop a write hidden in a
user-defined function. The session runs with ``DateStyle`` ISO (the text form the decoders parse) and
time zone UTC (so an incremental window compares naive TIMESTAMP and DATE cursor columns as UTC); both
are undone with the transaction, which is always rolled back: the export only reads.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from airflow_rs2gcs.engine.types import Column

log = logging.getLogger(__name__)

BEGIN_READ_ONLY = "BEGIN READ ONLY"
SESSION_SETTINGS = ("SET datestyle TO 'ISO, MDY'", "SET timezone TO 'UTC'")


class CursorRowSource:
    """What every row source holds: the connection, the query, its sizes, and what it read so far.

    :param connection: an open ``redshift_connector`` connection with no transaction open; the source
        owns it while it reads (see :func:`read_only_transaction`).
    :param sql: one SELECT.
    :param fetch_size: rows per ``FETCH FORWARD`` (at most 1000 on single-node clusters).
    :param batch_rows: rows per record batch; the last may be smaller.
    :param batch_bytes: a record batch also ends once this many received bytes are waiting (where the
        source sees bytes).
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
