"""The one type mapping: a Redshift column type (wire OID + type modifier) -> wire format and Arrow type.

Every encoder (Parquet, CSV, JSON Lines) starts from the Arrow schema built here, so a column means
the same in every format. How each Arrow type is written as text in CSV and JSON Lines is in
:mod:`airflow_rs2gcs.engine.textforms`. The table of every Redshift type and what it becomes in each
format is ``docs/type-mapping.md``, its only copy: change it together with this module.

The wire format is the result format the reader asks the server for: the fixed-width types of
:data:`BINARY_TYPES` in PostgreSQL's binary encoding (exact, and the same on every Redshift protocol
version), all others as text. A NUMERIC with a precision and scale that ``decimal128`` holds becomes
that decimal; any other NUMERIC, and every type without a typed column here, becomes a string with
the server's text.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa


class Oid(enum.IntEnum):
    """Wire type OIDs of the types the engine decodes (Redshift's and PostgreSQL's are the same)."""

    BOOL = 16
    BYTEA = 17
    CHAR = 18
    NAME = 19
    INT8 = 20
    INT2 = 21
    INT4 = 23
    TEXT = 25
    JSON = 114
    FLOAT4 = 700
    FLOAT8 = 701
    BPCHAR = 1042
    VARCHAR = 1043
    DATE = 1082
    TIME = 1083
    TIMESTAMP = 1114
    TIMESTAMPTZ = 1184
    TIMETZ = 1266
    NUMERIC = 1700
    GEOMETRY = 3000
    GEOGRAPHY = 3001
    JSONB = 3802
    GEOMETRYHEX = 3999
    SUPER = 4000
    VARBYTE = 6551


class WireFormat(enum.IntEnum):
    """PostgreSQL result format codes."""

    TEXT = 0
    BINARY = 1


MAX_DECIMAL128_PRECISION = 38
UTC = "UTC"

# Types received in PostgreSQL's binary encoding: fixed width, exact, and what redshift_connector
# itself asks Redshift for on every protocol version (so every Redshift serves them this way).
BINARY_TYPES: dict[int, pa.DataType] = {
    Oid.BOOL: pa.bool_(),
    Oid.INT2: pa.int16(),
    Oid.INT4: pa.int32(),
    Oid.INT8: pa.int64(),
    Oid.FLOAT4: pa.float32(),
    Oid.FLOAT8: pa.float64(),
    Oid.TIMESTAMP: pa.timestamp("us"),
    Oid.TIMESTAMPTZ: pa.timestamp("us", tz=UTC),
}

# Types received as text and parsed into a typed Arrow column.
TEXT_TYPES: dict[int, pa.DataType] = {
    Oid.DATE: pa.date32(),
    Oid.TIME: pa.time64("us"),
    Oid.BYTEA: pa.binary(),
    Oid.VARBYTE: pa.binary(),
}

TYPE_NAMES: dict[int, str] = {
    Oid.BOOL: "boolean",
    Oid.BYTEA: "bytea",
    Oid.CHAR: "char",
    Oid.NAME: "name",
    Oid.INT8: "bigint",
    Oid.INT2: "smallint",
    Oid.INT4: "integer",
    Oid.TEXT: "text",
    Oid.JSON: "json",
    Oid.FLOAT4: "real",
    Oid.FLOAT8: "double precision",
    Oid.BPCHAR: "character",
    Oid.VARCHAR: "character varying",
    Oid.DATE: "date",
    Oid.TIME: "time",
    Oid.TIMESTAMP: "timestamp",
    Oid.TIMESTAMPTZ: "timestamptz",
    Oid.TIMETZ: "timetz",
    Oid.NUMERIC: "numeric",
    Oid.GEOMETRY: "geometry",
    Oid.GEOGRAPHY: "geography",
    Oid.JSONB: "jsonb",
    Oid.GEOMETRYHEX: "geometry",
    Oid.SUPER: "super",
    Oid.VARBYTE: "varbyte",
}


@dataclass(frozen=True)
class Column:
    """A result column: name, wire type OID and modifier, the wire format and the Arrow type written.

    :param name: the column label the server sent.
    :param type_oid: the wire type OID.
    :param type_modifier: the type modifier (e.g. a NUMERIC's packed precision and scale), -1 if none.
    :param wire_format: the result format asked for (see :func:`wire_format_for`).
    :param arrow_type: the Arrow type of the column in every output format.
    """

    name: str
    type_oid: int
    type_modifier: int
    wire_format: WireFormat
    arrow_type: pa.DataType

    @property
    def type_name(self) -> str:
        """A readable source type, e.g. ``numeric(14,2)`` or ``super``; ``oid <n>`` if unknown."""
        name = TYPE_NAMES.get(self.type_oid, f"oid {self.type_oid}")
        sized = numeric_precision_scale(self.type_modifier) if self.type_oid == Oid.NUMERIC else None
        return f"{name}({sized[0]},{sized[1]})" if sized else name


def numeric_precision_scale(type_modifier: int) -> tuple[int, int] | None:
    """Decode a NUMERIC type modifier (``((p << 16) | s) + 4``); ``None`` when unconstrained."""
    if type_modifier < 4:
        return None
    packed = type_modifier - 4
    return (packed >> 16) & 0xFFFF, packed & 0xFFFF


def wire_format_for(type_oid: int) -> WireFormat:
    """Binary for the fixed-width types of :data:`BINARY_TYPES`, text for everything else."""
    return WireFormat.BINARY if type_oid in BINARY_TYPES else WireFormat.TEXT


def _decimal_type(type_modifier: int) -> pa.DataType:
    sized = numeric_precision_scale(type_modifier)
    if sized is None:
        return pa.string()
    precision, scale = sized
    if not 1 <= precision <= MAX_DECIMAL128_PRECISION or scale > precision:
        return pa.string()
    return pa.decimal128(precision, scale)


def arrow_type_for(type_oid: int, type_modifier: int) -> pa.DataType:
    """The Arrow type of a column of the given wire type (see ``docs/type-mapping.md``)."""
    if type_oid == Oid.NUMERIC:
        return _decimal_type(type_modifier)
    return BINARY_TYPES.get(type_oid) or TEXT_TYPES.get(type_oid) or pa.string()


def column_for(name: str, type_oid: int, type_modifier: int) -> Column:
    """The :class:`Column` of a result field."""
    return Column(
        name, type_oid, type_modifier, wire_format_for(type_oid), arrow_type_for(type_oid, type_modifier)
    )


def columns_from_row_description(row_desc: Sequence[dict]) -> list[Column]:
    """Columns from redshift_connector's row description (it has the modifiers; ``description`` has not)."""
    columns = []
    for field in row_desc:
        label = field["label"]
        name = label.decode("utf-8") if isinstance(label, bytes) else str(label)
        columns.append(column_for(name, int(field["type_oid"]), int(field["type_modifier"])))
    return columns


def schema_of(columns: Sequence[Column]) -> pa.Schema:
    """The Arrow schema of a result; each field's metadata names its Redshift type."""
    return pa.schema(
        [
            pa.field(c.name, c.arrow_type, nullable=True, metadata={"rs2gcs.source_type": c.type_name})
            for c in columns
        ]
    )
