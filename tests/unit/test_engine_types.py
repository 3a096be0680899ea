"""The one type mapping: wire OID + type modifier -> wire format and Arrow type, for every Redshift type."""

from __future__ import annotations

import pyarrow as pa
import pytest

from airflow_rs2gcs.engine.types import (
    Oid,
    WireFormat,
    arrow_type_for,
    column_for,
    columns_from_row_description,
    numeric_precision_scale,
    schema_of,
    wire_format_for,
)


def numeric_modifier(precision: int, scale: int) -> int:
    return ((precision << 16) | scale) + 4


# Every Redshift type of the issue, with the OID Redshift sends for it.
REDSHIFT_TYPES = [
    ("SMALLINT", 21, -1, pa.int16(), WireFormat.BINARY),
    ("INTEGER", 23, -1, pa.int32(), WireFormat.BINARY),
    ("BIGINT", 20, -1, pa.int64(), WireFormat.BINARY),
    ("DECIMAL(14,2)", 1700, numeric_modifier(14, 2), pa.decimal128(14, 2), WireFormat.TEXT),
    ("DECIMAL(38,10)", 1700, numeric_modifier(38, 10), pa.decimal128(38, 10), WireFormat.TEXT),
    ("DECIMAL(18,0)", 1700, numeric_modifier(18, 0), pa.decimal128(18, 0), WireFormat.TEXT),
    ("REAL", 700, -1, pa.float32(), WireFormat.BINARY),
    ("DOUBLE PRECISION", 701, -1, pa.float64(), WireFormat.BINARY),
    ("BOOLEAN", 16, -1, pa.bool_(), WireFormat.BINARY),
    ("CHAR(5)", 1042, 9, pa.string(), WireFormat.TEXT),
    ("VARCHAR(300)", 1043, 304, pa.string(), WireFormat.TEXT),
    ("DATE", 1082, -1, pa.date32(), WireFormat.TEXT),
    ("TIMESTAMP", 1114, -1, pa.timestamp("us"), WireFormat.BINARY),
    ("TIMESTAMPTZ", 1184, -1, pa.timestamp("us", tz="UTC"), WireFormat.BINARY),
    ("TIME", 1083, -1, pa.time64("us"), WireFormat.TEXT),
    ("TIMETZ", 1266, -1, pa.string(), WireFormat.TEXT),
    ("SUPER", 4000, -1, pa.string(), WireFormat.TEXT),
    ("VARBYTE", 6551, -1, pa.binary(), WireFormat.TEXT),
    ("GEOMETRY", 3000, -1, pa.string(), WireFormat.TEXT),
    ("GEOGRAPHY", 3001, -1, pa.string(), WireFormat.TEXT),
    ("HLLSKETCH (unknown OID)", 2935, -1, pa.string(), WireFormat.TEXT),
]


@pytest.mark.parametrize(
    ("label", "oid", "modifier", "arrow", "wire"), REDSHIFT_TYPES, ids=[t[0] for t in REDSHIFT_TYPES]
)
def test_every_redshift_type_has_one_mapping(label, oid, modifier, arrow, wire):
    assert arrow_type_for(oid, modifier) == arrow
    assert wire_format_for(oid) == wire
    column = column_for("c", oid, modifier)
    assert (column.arrow_type, column.wire_format) == (arrow, wire)


@pytest.mark.parametrize(
    ("oid", "arrow"),
    [(114, pa.string()), (3802, pa.string()), (17, pa.binary()), (25, pa.string()), (19, pa.string())],
)
def test_postgresql_stand_ins_map_like_their_redshift_types(oid, arrow):
    """JSON/JSONB stand in for SUPER and BYTEA for VARBYTE on the local PostgreSQL."""
    assert arrow_type_for(oid, -1) == arrow


@pytest.mark.parametrize(
    ("modifier", "expected"),
    [
        (-1, pa.string()),  # NUMERIC without (p, s): exact text
        (numeric_modifier(39, 2), pa.string()),  # wider than decimal128
        (numeric_modifier(1, 0), pa.decimal128(1, 0)),
        (numeric_modifier(38, 38), pa.decimal128(38, 38)),
    ],
)
def test_decimal_is_sized_from_the_modifier(modifier, expected):
    assert arrow_type_for(Oid.NUMERIC, modifier) == expected


def test_numeric_modifier_decoding():
    assert numeric_precision_scale(numeric_modifier(14, 2)) == (14, 2)
    assert numeric_precision_scale(-1) is None


def test_columns_from_the_drivers_row_description_and_schema_metadata():
    row_desc = [
        {"label": b"amount", "type_oid": 1700, "type_modifier": numeric_modifier(14, 2)},
        {"label": "doc", "type_oid": 4000, "type_modifier": -1},
    ]
    columns = columns_from_row_description(row_desc)
    assert [c.name for c in columns] == ["amount", "doc"]
    assert [c.type_name for c in columns] == ["numeric(14,2)", "super"]
    schema = schema_of(columns)
    assert schema.field("amount").type == pa.decimal128(14, 2)
    assert schema.field("doc").metadata == {b"rs2gcs.source_type": b"super"}
    assert column_for("x", 2935, -1).type_name == "oid 2935"
