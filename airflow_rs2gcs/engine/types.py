"""The one type mapping from Redshift (PostgreSQL wire) column types to Arrow types.

Every encoder (Parquet, CSV, JSON Lines) starts from the Arrow schema built here, so a column has
the same meaning in every format. The mapping, documented in the README:

==================  =========================================  ==========================================
Redshift type        Arrow / Parquet                            CSV and JSON Lines
==================  =========================================  ==========================================
SMALLINT             int16                                      integer
INTEGER              int32                                      integer
BIGINT               int64                                      integer
DECIMAL(p,s)         decimal128(p, s) (exact, sized from        decimal text, e.g. ``12.30``
                     the column's type modifier)
DECIMAL (no p,s)     string (exact decimal text)                decimal text
REAL                 float32                                    number
DOUBLE PRECISION     float64                                    number
BOOLEAN              bool                                       ``true``/``false``
CHAR, VARCHAR, TEXT  string                                     text
DATE                 date32                                     ``YYYY-MM-DD``
TIMESTAMP            timestamp[us] (no zone)                    ISO 8601 without offset
TIMESTAMPTZ          timestamp[us, tz=UTC] (the instant)        ISO 8601 in UTC with ``Z``
TIME                 time64[us]                                 ``HH:MM:SS[.ffffff]``
TIMETZ               string (``HH:MM:SS+hh``)                   text
SUPER, JSON, JSONB   string (JSON text)                         JSON text
VARBYTE, BYTEA       binary                                     hex text / base64 in JSON
GEOMETRY/GEOGRAPHY   string (the server's text form, EWKB hex)  text
anything else        string (the driver's text form)            text
==================  =========================================  ==========================================
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

NUMERIC_OID = 1700
MAX_DECIMAL128_PRECISION = 38

_FIXED: dict[int, pa.DataType] = {
    21: pa.int16(),
    23: pa.int32(),
    20: pa.int64(),
    700: pa.float32(),
    701: pa.float64(),
    16: pa.bool_(),
    18: pa.string(),
    19: pa.string(),
    25: pa.string(),
    1042: pa.string(),
    1043: pa.string(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    1083: pa.time64("us"),
    1266: pa.string(),
    114: pa.string(),
    3802: pa.string(),
    4000: pa.string(),
    17: pa.binary(),
    6551: pa.binary(),
    3000: pa.string(),
    3001: pa.string(),
    2950: pa.string(),
}


@dataclass(frozen=True)
class Column:
    """A result column: its name, wire type and modifier, and the Arrow type it is written as."""

    name: str
    type_oid: int
    type_modifier: int
    arrow_type: pa.DataType


def numeric_precision_scale(type_modifier: int) -> tuple[int, int] | None:
    """Decode a NUMERIC type modifier (``((p << 16) | s) + 4``); ``None`` when unconstrained."""
    if type_modifier < 4:
        return None
    packed = type_modifier - 4
    return (packed >> 16) & 0xFFFF, packed & 0xFFFF


def arrow_type_for(type_oid: int, type_modifier: int) -> pa.DataType:
    """The Arrow type of a column of the given wire type (see the module table)."""
    if type_oid == NUMERIC_OID:
        sized = numeric_precision_scale(type_modifier)
        if sized is None or sized[0] > MAX_DECIMAL128_PRECISION:
            return pa.string()
        return pa.decimal128(*sized)
    return _FIXED.get(type_oid, pa.string())


def columns_from_row_description(row_desc: Sequence[dict[str, Any]]) -> list[Column]:
    """Columns from the driver's row description (it carries the type modifiers; ``description`` does not)."""
    columns = []
    for field in row_desc:
        label = field["label"]
        name = label.decode("utf-8") if isinstance(label, bytes) else str(label)
        oid, modifier = int(field["type_oid"]), int(field["type_modifier"])
        columns.append(Column(name, oid, modifier, arrow_type_for(oid, modifier)))
    return columns


def schema_of(columns: Sequence[Column]) -> pa.Schema:
    """The Arrow schema of a result."""
    return pa.schema([pa.field(c.name, c.arrow_type, nullable=True) for c in columns])


def _as_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.time | dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def _as_binary(value: Any) -> Any:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        # The driver hands VARBYTE/BYTEA back as hex text on some paths ("\x..." or plain hex).
        return bytes.fromhex(value.removeprefix("\\x"))
    return bytes(value)


def converter_for(arrow_type: pa.DataType) -> Callable[[Any], Any] | None:
    """A per-value fix-up for values the driver returns in a form Arrow does not take as is."""
    if pa.types.is_string(arrow_type):
        return _as_text
    if pa.types.is_binary(arrow_type):
        return _as_binary
    return None


def record_batch(
    rows: Sequence[Sequence[Any]], columns: Sequence[Column], schema: pa.Schema
) -> pa.RecordBatch:
    """Build an Arrow record batch from driver rows, column by column."""
    arrays = []
    for index, column in enumerate(columns):
        values = [row[index] for row in rows]
        convert = converter_for(column.arrow_type)
        if convert is not None:
            values = [convert(v) for v in values]
        arrays.append(pa.array(values, type=column.arrow_type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
