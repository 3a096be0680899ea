"""Take result rows off ``redshift_connector`` as undecoded DataRow messages, in the formats we choose.

``redshift_connector`` decodes every field of every row in Python (one function call per value, plus
the row loop), which bounds a fetch's speed and holds the GIL throughout (``bench/README.md`` has the
figures).
:class:`RawRowCapture` keeps the driver for everything else (authentication, the extended query
protocol, transactions, errors) and replaces, on one connection and only while it is active:

* the connection's DataRow handler: each row's message body is appended, as the ``bytes`` the driver
  read, to a list; :mod:`airflow_rs2gcs.engine.decode` later decodes whole batches column by column
  with numpy and Arrow;
* the connection's result-format table: fixed-width types in binary, everything else as text
  (:func:`airflow_rs2gcs.engine.types.wire_format_for`), whatever protocol version was negotiated.

Both are per-connection attributes of ``redshift_connector.Connection`` (``message_types`` and
``redshift_types``), and the cursor's prepared statement (``ps``) keeps the row description and
the bound result formats. :func:`check_driver`, :func:`row_description` and :func:`result_formats`
raise :class:`UnsupportedDriverError` for a driver that no longer has them; with ``fetch_method``
``auto`` the export then reads through the driver's public API instead
(:mod:`airflow_rs2gcs.engine.driver_source`).
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Callable
from types import TracebackType
from typing import Any

from airflow_rs2gcs.engine.types import BINARY_TYPES, WireFormat

DATA_ROW = b"D"


class UnsupportedDriverError(RuntimeError):
    """The installed ``redshift_connector`` does not expose what :class:`RawRowCapture` relies on.

    The message starts with the driver's version.
    """

    def __init__(self, problem: str) -> None:
        super().__init__(f"redshift_connector {driver_version()}: {problem}")


def _unused_decoder(data: bytes, offset: int, length: int) -> bytes:
    """Stands in for the driver's per-value decoder; never called while the capture is active."""
    return data[offset : offset + length]


def driver_version() -> str:
    """The installed ``redshift_connector`` version, for messages."""
    try:
        import redshift_connector

        return str(getattr(redshift_connector, "__version__", "unknown"))
    except ImportError:  # pragma: no cover - the provider depends on it
        return "not installed"


def check_driver(connection: Any) -> None:
    """Raise :class:`UnsupportedDriverError` unless ``connection`` has the hooks the capture replaces."""
    handlers = getattr(connection, "message_types", None)
    formats = getattr(connection, "redshift_types", None)
    if not isinstance(handlers, dict) or DATA_ROW not in handlers or not isinstance(formats, dict):
        raise UnsupportedDriverError(
            "no per-connection 'message_types' DataRow handler or 'redshift_types' table; the fast "
            "path needs redshift_connector 2.x"
        )


def result_format_table(driver_table: dict[int, tuple[int, Callable]]) -> defaultdict:
    """A ``redshift_types`` table asking for binary on :data:`BINARY_TYPES` and text on all others."""
    table: defaultdict = defaultdict(lambda: (int(WireFormat.TEXT), _unused_decoder))
    for oid in BINARY_TYPES:
        table[oid] = (int(WireFormat.BINARY), driver_table.get(oid, (0, _unused_decoder))[1])
    return table


def row_description(cursor: Any) -> list[dict]:
    """The driver's row description of ``cursor``'s current statement (it has the type modifiers)."""
    row_desc = (getattr(cursor, "ps", None) or {}).get("row_desc")
    if not isinstance(row_desc, list):
        raise UnsupportedDriverError("the cursor keeps no row description ('row_desc')")
    return row_desc


def result_formats(cursor: Any) -> list[int]:
    """The result format codes the driver bound for ``cursor``'s current statement (from its Bind)."""
    bind = (getattr(cursor, "ps", None) or {}).get("bind_2")
    if bind is None:
        raise UnsupportedDriverError("the cursor keeps no bound result formats ('bind_2')")
    (count,) = struct.unpack_from("!h", bind, 0)
    return list(struct.unpack_from(f"!{count}h", bind, 2))


class RawRowCapture:
    """While active, ``connection``'s result rows are collected undecoded instead of decoded.

    Use as a context manager around the statements whose rows you want (``FETCH``); :meth:`take`
    hands over the rows collected so far. Statements prepared while it is active bind the result
    formats of :func:`result_format_table`.

    :param connection: an open ``redshift_connector`` connection (used by one thread at a time).
    """

    def __init__(self, connection: Any) -> None:
        check_driver(connection)
        self.connection = connection
        self._rows: list[bytes] = []
        self._saved_handler: Callable | None = None
        self._saved_formats: dict | None = None

    def __enter__(self) -> RawRowCapture:
        self._saved_handler = self.connection.message_types[DATA_ROW]
        self._saved_formats = self.connection.redshift_types
        self.connection.redshift_types = result_format_table(self._saved_formats)
        self._install()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.connection.message_types[DATA_ROW] = self._saved_handler
        self.connection.redshift_types = self._saved_formats
        self._rows = []

    def _install(self) -> None:
        append = self._rows.append

        def on_data_row(data: bytes, cursor: Any) -> None:
            append(data)

        self.connection.message_types[DATA_ROW] = on_data_row

    def take(self) -> list[bytes]:
        """The DataRow bodies received since the last call, in order; starts a new list."""
        rows = self._rows
        self._rows = []
        self._install()
        return rows
