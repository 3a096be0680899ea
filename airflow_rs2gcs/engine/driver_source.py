"""The plain row source: only the driver's public DB-API (``execute``, ``description``, ``fetchall``).

It is the fallback for a ``redshift_connector`` whose internals the fast path
(:mod:`airflow_rs2gcs.engine.wire_source`) cannot use: slower, since the driver builds a Python object
per value, but it writes the same Arrow schema and the same values, through the same type mapping
(:mod:`airflow_rs2gcs.engine.types`) and the same text decoders (:mod:`airflow_rs2gcs.engine.decode`).

The driver's own conversions are not all exact (it turns BC dates into ``date.min``, drops a TIMETZ
offset, parses JSON, may read NUMERIC as float), so the query is wrapped to hand every column the
engine reads as text over as text::

    SELECT c1, CAST(c2 AS VARCHAR), ... FROM (<sql>) AS rs2gcs_rows(c1, c2, ...)

- kept as the driver's values: BOOLEAN, SMALLINT, INTEGER, BIGINT, REAL, DOUBLE PRECISION, which
  it reads in binary and converts exactly, and the text types, which it hands over unchanged (a
  cast would trim CHAR's blank padding, and SUPER and the spatial types cannot all be cast);
- ``FROM_VARBYTE(c, 'hex')`` for VARBYTE (the driver would decode its bytes as UTF-8);
- ``CAST(c AS VARCHAR)`` for everything else, timestamps included (the driver clamps those outside
  the years 1-9999).

The columns are described first, with ``SELECT * FROM (<sql>) LIMIT 0``. DECIMAL(p,s) needs the
type modifier, which DB-API's ``description`` does not carry; it is read from the driver's row
description where the driver still keeps one, and otherwise the column is written as exact text
(the type mapping's rule for a NUMERIC of unknown precision), with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from airflow_rs2gcs.engine.datarows import arrow_buffer, text_fields, validity_bitmap
from airflow_rs2gcs.engine.decode import DecodeError, text_decoder_for
from airflow_rs2gcs.engine.reader import (
    CursorRowSource,
    declare_cursor,
    fetch_statement,
)
from airflow_rs2gcs.engine.types import Column, Oid, column_for, schema_of
from airflow_rs2gcs.engine.wire import UnsupportedDriverError, driver_version, row_description

log = logging.getLogger(__name__)

# Binary types whose Python values the driver converts exactly (not the timestamps: see above), and
# the numpy type each is gathered in.
DRIVER_VALUES: dict[int, type[np.generic]] = {
    Oid.BOOL: np.bool_,
    Oid.INT2: np.int16,
    Oid.INT4: np.int32,
    Oid.INT8: np.int64,
    Oid.FLOAT4: np.float32,
    Oid.FLOAT8: np.float64,
}
# Types the driver hands over as the server's text, which a cast would change or could not take.
DRIVER_TEXT = frozenset(
    {
        Oid.CHAR,
        Oid.BPCHAR,
        Oid.VARCHAR,
        Oid.TEXT,
        Oid.NAME,
        Oid.SUPER,
        Oid.GEOMETRY,
        Oid.GEOGRAPHY,
        Oid.GEOMETRYHEX,
    }
)
ROWS_ALIAS = "rs2gcs_rows"


def type_modifiers(cursor: Any) -> list[int] | None:
    """The type modifiers of ``cursor``'s result columns from the driver's row description, if it keeps
    one (DB-API's ``description`` has no precision or scale); ``None`` if it does not."""
    try:
        return [int(field["type_modifier"]) for field in row_description(cursor)]
    except (UnsupportedDriverError, KeyError, TypeError, ValueError):
        return None


def described_columns(description: Sequence[Sequence[Any]], modifiers: Sequence[int] | None) -> list[Column]:
    """The result columns from DB-API's ``description`` (names, type OIDs), through the type mapping."""
    if modifiers is None or len(modifiers) != len(description):
        modifiers = [-1] * len(description)
    columns = []
    for (name, type_oid, *_), modifier in zip(description, modifiers, strict=True):
        label = name.decode("utf-8") if isinstance(name, bytes) else str(name)
        columns.append(column_for(label, int(type_oid), modifier))
    return columns


def _projection(column: Column, alias: str) -> str:
    if column.type_oid in DRIVER_VALUES or column.type_oid in DRIVER_TEXT:
        return alias
    if column.type_oid == Oid.VARBYTE:
        return f"FROM_VARBYTE({alias}, 'hex')"
    return f"CAST({alias} AS VARCHAR)"


def text_read_query(sql: str, columns: Sequence[Column]) -> str:
    """``sql`` wrapped so that every column the engine reads as text reaches the driver as text."""
    aliases = [f"c{index}" for index in range(1, len(columns) + 1)]
    select = ", ".join(_projection(column, alias) for column, alias in zip(columns, aliases, strict=True))
    return f"SELECT {select} FROM ({sql}) AS {ROWS_ALIAS}({', '.join(aliases)})"


def column_array(column: Column, values: Sequence[Any]) -> pa.Array:
    """One column of driver values as an Arrow array of the column's type; DecodeError names it.

    Built from numpy buffers, not ``pa.array``: that one imports pandas and with it Arrow's compute
    kernels, which a Parquet export otherwise never loads (see bench/README.md on memory).
    """
    try:
        if column.type_oid in DRIVER_VALUES:
            return _driver_values(column, values)
        _check_texts(values)
        batch, refs = text_fields(values)
        return text_decoder_for(column)(batch, refs, column)
    except (DecodeError, pa.ArrowInvalid, TypeError, ValueError, OverflowError) as exc:
        raise DecodeError(f"column {column.name!r} ({column.type_name}): {exc}") from exc


def _driver_values(column: Column, values: Sequence[Any]) -> pa.Array:
    count = len(values)
    null = np.fromiter((value is None for value in values), dtype=bool, count=count)
    dtype = DRIVER_VALUES[column.type_oid]
    numbers = np.fromiter((0 if value is None else value for value in values), dtype=dtype, count=count)
    data = np.packbits(numbers, bitorder="little") if column.type_oid == Oid.BOOL else numbers
    validity, nulls = validity_bitmap(null)
    return pa.Array.from_buffers(column.arrow_type, count, [validity, arrow_buffer(data)], nulls)


def _check_texts(values: Sequence[Any]) -> None:
    for value in values:
        if value is not None and not isinstance(value, str):
            raise DecodeError(
                f"redshift_connector {driver_version()} returned a {type(value).__name__} where the "
                "server's text was expected"
            )


class DriverRowSource(CursorRowSource):
    """Reads ``sql`` as Arrow record batches through the driver's public API only (the plain path).

    :param connection: an open ``redshift_connector`` connection with no transaction open; the source
        owns it while :meth:`batches` runs (see :func:`airflow_rs2gcs.engine.reader.read_only_transaction`).
    :param sql: one SELECT; it is described, wrapped (see the module doc) and read through a cursor.
    :param fetch_size: rows per ``FETCH FORWARD`` (at most 1000 on single-node clusters).
    :param batch_rows: rows per record batch; the last may be smaller.
    :param batch_bytes: unused here (the driver sizes nothing in bytes); accepted so that both row
        sources take the same settings.
    """

    method = "driver"

    def read_in(self, cursor: Any) -> Iterator[pa.RecordBatch]:
        """Yield the result as record batches; :attr:`columns` and :attr:`schema` are set before the first."""
        cursor.execute(f"SELECT * FROM ({self.sql}) AS {ROWS_ALIAS} LIMIT 0")
        modifiers = type_modifiers(cursor)
        self.columns = described_columns(cursor.description or [], modifiers)
        self.schema = schema_of(self.columns)
        if modifiers is None:
            self._warn_unsized_decimals()
        name = declare_cursor(cursor, text_read_query(self.sql, self.columns))
        yield from self._fetch_all(cursor, name)
        cursor.execute(f"CLOSE {name}")

    def _fetch_all(self, cursor: Any, name: str) -> Iterator[pa.RecordBatch]:
        fetch = fetch_statement(name, self.fetch_size)
        pending: list[Sequence[Any]] = []
        while True:
            cursor.execute(fetch)
            rows = list(cursor.fetchall())
            last = len(rows) < self.fetch_size
            pending += rows
            del rows
            while pending and (len(pending) >= self.batch_rows or last):
                chunk, pending = pending[: self.batch_rows], pending[self.batch_rows :]
                yield self._convert(chunk)
            if last:
                return

    def _convert(self, rows: list[Sequence[Any]]) -> pa.RecordBatch:
        assert self.schema is not None
        values = list(zip(*rows, strict=True)) if rows else [()] * len(self.columns)
        arrays = [column_array(column, list(v)) for column, v in zip(self.columns, values, strict=True)]
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        self.rows_read += batch.num_rows
        self.bytes_read += batch.nbytes
        return batch

    def _warn_unsized_decimals(self) -> None:
        unsized = [c.name for c in self.columns if c.type_oid == Oid.NUMERIC and c.type_modifier < 0]
        if unsized:
            log.warning(
                "redshift_connector %s gives no precision and scale for the DECIMAL column(s) %s: they "
                "are written as exact text (string), as for a NUMERIC without (p,s)",
                driver_version(),
                ", ".join(unsized),
            )
