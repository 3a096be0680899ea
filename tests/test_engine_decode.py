"""Vectorised DataRow decoding, on DataRow messages built here exactly as the server sends them."""

from __future__ import annotations

import datetime as dt
import re
import struct
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_rs2gcs.engine.datarows import DataRowError, split_rows
from airflow_rs2gcs.engine.decode import DecodeError, civil_days, date_text_days, decode_batch
from airflow_rs2gcs.engine.types import Column, WireFormat, column_for, schema_of

PG_EPOCH = dt.datetime(2000, 1, 1)
INT64_MAX = 2**63 - 1


def data_row(*fields: bytes | None) -> bytes:
    """A DataRow message body: column count, then each field's length (-1 for NULL) and bytes."""
    body = struct.pack("!h", len(fields))
    for field in fields:
        body += struct.pack("!i", -1) if field is None else struct.pack("!i", len(field)) + field
    return body


def decode(oid: int, fields: list[bytes | None], modifier: int = -1) -> pa.Array:
    """Decode one column of ``fields`` of type ``oid``."""
    column = column_for("c", oid, modifier)
    batch = split_rows([data_row(f) for f in fields], 1)
    return decode_batch(batch, [column], schema_of([column])).column(0)


def micros_since_2000(moment: dt.datetime) -> bytes:
    return struct.pack("!q", (moment - PG_EPOCH) // dt.timedelta(microseconds=1))


def test_integers_floats_and_booleans_from_binary():
    assert decode(21, [struct.pack("!h", -32768), None, struct.pack("!h", 32767)]).to_pylist() == [
        -32768,
        None,
        32767,
    ]
    assert decode(23, [struct.pack("!i", -(2**31)), struct.pack("!i", 2**31 - 1)]).to_pylist() == [
        -(2**31),
        2**31 - 1,
    ]
    assert decode(20, [struct.pack("!q", -(2**63)), struct.pack("!q", INT64_MAX), None]).to_pylist() == [
        -(2**63),
        INT64_MAX,
        None,
    ]
    assert decode(16, [b"\x01", b"\x00", None]).to_pylist() == [True, False, None]


def test_floats_keep_their_exact_bits():
    values = [0.1, -0.0, float("inf"), float("-inf"), 5e-324, 1.7976931348623157e308]
    decoded = decode(701, [struct.pack("!d", v) for v in values] + [struct.pack("!d", float("nan"))])
    got = decoded.to_numpy(zero_copy_only=False)
    assert [struct.pack("!d", v) for v in got[:-1]] == [struct.pack("!d", v) for v in values]
    assert np.isnan(got[-1])
    real = decode(700, [struct.pack("!f", 3.4028234663852886e38), struct.pack("!f", 1e-45), None])
    assert real.type == pa.float32()
    assert real.to_pylist() == [np.float32(3.4028235e38), np.float32(1e-45), None]


def test_timestamps_are_instants_in_microseconds_including_before_1970_and_after_2038():
    moments = [
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2040, 6, 30, 12, 0, 0, 1),
        dt.datetime(1, 1, 1),
    ]
    naive = decode(1114, [micros_since_2000(m) for m in moments] + [None])
    assert naive.to_pylist() == [*moments, None]
    aware = decode(1184, [micros_since_2000(m) for m in moments])
    assert aware.type == pa.timestamp("us", tz="UTC")
    assert aware.to_pylist() == [m.replace(tzinfo=dt.UTC) for m in moments]


def test_infinite_timestamps_are_refused_not_changed():
    with pytest.raises(DecodeError, match=r"column 'c' .*infinity"):
        decode(1184, [struct.pack("!q", INT64_MAX)])
    with pytest.raises(DecodeError, match="infinity"):
        decode(1114, [struct.pack("!q", -(2**63))])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a",
        "exactly12byt",
        "thirteen byte",
        'comma, "quote"\nnew line\r\n\ttab \\ back',
        "emoji 🚀✨ 日本語",
        "x" * 5000,
    ],
)
def test_text_of_every_length_and_kind(text):
    assert decode(25, [text.encode(), None, text.encode()]).to_pylist() == [text, None, text]


def test_empty_string_and_null_stay_distinct():
    decoded = decode(1043, [b"", None, b"", None])
    assert decoded.to_pylist() == ["", None, "", None]
    assert decoded.null_count == 2


def test_invalid_utf8_is_refused():
    with pytest.raises(DecodeError, match="UTF-8"):
        decode(25, [b"ok", b"\xff\xfe broken"])


@pytest.mark.parametrize(
    ("text", "precision", "scale"),
    [
        ("9999999999999999999999999999.9999999999", 38, 10),
        ("-9999999999999999999999999999.9999999999", 38, 10),
        ("0.0000000001", 38, 10),
        ("-0.50", 14, 2),
        ("123456789012.34", 14, 2),
        ("0", 18, 0),
    ],
)
def test_decimals_are_exact_at_full_width(text, precision, scale):
    modifier = ((precision << 16) | scale) + 4
    decoded = decode(1700, [text.encode(), None], modifier)
    assert decoded.type == pa.decimal128(precision, scale)
    assert decoded.to_pylist() == [Decimal(text), None]


def numeric_modifier(precision: int, scale: int) -> int:
    return ((precision << 16) | scale) + 4


@st.composite
def decimal_texts(draw: st.DrawFn) -> tuple[int, int, list[str | None]]:
    """A DECIMAL(p,s) and a batch of its values as the server prints them (any width, sign, NULLs)."""
    precision = draw(st.integers(1, 38))
    scale = draw(st.integers(0, precision))
    bound = 10**precision - 1
    unscaled = st.one_of(st.integers(-bound, bound), st.sampled_from([0, bound, -bound, 1, -1]))
    values = draw(st.lists(st.one_of(st.none(), unscaled), min_size=1, max_size=40))
    return precision, scale, [None if v is None else decimal_text(v, scale) for v in values]


def decimal_text(unscaled: int, scale: int) -> str:
    """How PostgreSQL prints a NUMERIC(p, scale) of this unscaled value (built without rounding)."""
    digits = str(abs(unscaled)).rjust(scale + 1, "0")
    sign = "-" if unscaled < 0 else ""
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}" if scale else sign + digits


@settings(max_examples=300, deadline=None, derandomize=True)
@given(decimal_texts())
def test_decimal_text_decodes_to_the_exact_value(case):
    """Checked against Python's Decimal on every width up to 38 digits, both limbs and the carry."""
    precision, scale, texts = case
    decoded = decode(
        1700, [None if t is None else t.encode() for t in texts], numeric_modifier(precision, scale)
    )
    assert decoded.type == pa.decimal128(precision, scale)
    assert decoded.to_pylist() == [None if t is None else Decimal(t) for t in texts]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("123.456", "more than 2 digits after the point"),
        ("1234567890123.00", "more than 14 digits"),
        ("NaN", "not a decimal number"),
        ("Infinity", "not a decimal number"),
        ("1.2.3", "not a decimal number"),
        ("--1", "not a decimal number"),
        ("1-", "not a decimal number"),
        ("", "not a decimal number"),
        ("-", "not a decimal number"),
        ("1e5", "not a decimal number"),
        (" 1.00", "not a decimal number"),
        ("9" * 42, "not a decimal number"),
        ("-1234567890123.00", "more than 14 digits"),
    ],
)
def test_a_decimal_text_that_does_not_fit_is_refused_not_rounded(text, reason):
    with pytest.raises(DecodeError, match=f"column 'c' .*'{re.escape(text)}' .*{reason}"):
        decode(1700, [b"1.00", None, text.encode()], numeric_modifier(14, 2))


def test_a_decimal_column_of_another_width_than_decimal128_is_refused():
    column = Column("c", 1700, numeric_modifier(40, 2), WireFormat.TEXT, pa.decimal256(40, 2))
    batch = split_rows([data_row(b"1.00")], 1)
    with pytest.raises(DecodeError, match=r"column 'c' .*decimal256.* is not decimal128"):
        decode_batch(batch, [column], schema_of([column]))


def fits_decimal(text: str, precision: int, scale: int) -> bool:
    """The reference: plain notation with at most ``scale`` decimals and ``precision`` digits in all,
    and at most a sign and a leading zero in front of the ``precision - scale`` integer digits."""
    match = re.fullmatch(r"(-?)(\d*)(?:\.(\d*))?", text)
    if match is None or not (match[2] or match[3]) or len(match[3] or "") > scale:
        return False
    return len(match[1] + match[2]) <= precision - scale + 2 and abs(Decimal(text)) < 10 ** (
        precision - scale
    )


@settings(max_examples=500, deadline=None, derandomize=True)
@given(
    st.integers(1, 38).flatmap(lambda p: st.tuples(st.just(p), st.integers(0, p))),
    st.lists(st.one_of(st.none(), st.text(alphabet="0123456789.-+ eE", max_size=45)), min_size=1, max_size=8),
)
def test_any_decimal_text_is_decoded_exactly_or_refused_with_the_column(type_, texts):
    """Garbage, overflow and over-long fractions raise DecodeError; everything else is exact."""
    precision, scale = type_
    fields = [None if t is None else t.encode() for t in texts]
    if all(t is None or fits_decimal(t, precision, scale) for t in texts):
        decoded = decode(1700, fields, numeric_modifier(precision, scale))
        assert decoded.to_pylist() == [None if t is None else Decimal(t) for t in texts]
    else:
        with pytest.raises(DecodeError, match=f"column 'c' \\(numeric\\({precision},{scale}\\)\\)"):
            decode(1700, fields, numeric_modifier(precision, scale))


def test_a_long_integer_part_is_refused_in_a_decimal_with_a_large_scale():
    with pytest.raises(DecodeError, match="'12345678901234567890' has more than 38 digits"):
        decode(1700, [b"1.5", b"12345678901234567890"], numeric_modifier(38, 30))


def test_decimal_shorter_fractions_and_leading_zeros_keep_their_value():
    texts = ["1.5", "007.25", "-0.00", ".5", "12."]
    decoded = decode(1700, [t.encode() for t in texts], numeric_modifier(5, 2))
    assert decoded.to_pylist() == [Decimal(t) for t in ["1.50", "7.25", "0.00", "0.50", "12.00"]]


def test_unconstrained_numeric_stays_exact_text():
    assert decode(1700, [b"3.14159265358979323846264338327950288419716939937510"]).to_pylist() == [
        "3.14159265358979323846264338327950288419716939937510"
    ]


def test_numeric_nan_is_refused_with_the_column_name():
    with pytest.raises(DecodeError, match="column 'c' \\(numeric\\(14,2\\)\\)"):
        decode(1700, [b"1.00", b"NaN"], ((14 << 16) | 2) + 4)


def test_dates_across_the_whole_range():
    texts = ["1969-12-31", "1970-01-01", "2038-01-19", "2100-02-28", "9999-12-31", "0001-01-01"]
    decoded = decode(1082, [t.encode() for t in texts] + [None])
    assert decoded.to_pylist() == [dt.date.fromisoformat(t) for t in texts] + [None]
    odd = decode(1082, [b"0044-03-15 BC", b"12345-06-07", b"2026-01-01", b"4713-11-24 BC", None])
    assert odd.cast(pa.int32()).to_pylist() == [
        civil_days(-43, 3, 15),
        civil_days(12345, 6, 7),
        civil_days(2026, 1, 1),
        civil_days(-4712, 11, 24),
        None,
    ]


def test_civil_days_is_the_proleptic_gregorian_calendar():
    for year in (1, 4, 100, 400, 1582, 1969, 1970, 2000, 2024, 9999):
        for month, day in ((1, 1), (2, 28), (3, 1), (12, 31)):
            assert civil_days(year, month, day) == (dt.date(year, month, day) - dt.date(1970, 1, 1)).days
    assert civil_days(0, 12, 31) == civil_days(1, 1, 1) - 1  # 1 BC is year 0
    assert civil_days(0, 3, 1) - civil_days(0, 2, 28) == 2  # and a leap year
    assert date_text_days("0001-12-31 BC") == civil_days(0, 12, 31)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.none(), st.dates()), min_size=1, max_size=50))
def test_iso_dates_decode_to_their_day(dates):
    decoded = decode(1082, [None if d is None else d.isoformat().encode() for d in dates])
    assert decoded.to_pylist() == dates


@pytest.mark.parametrize(
    "text", ["2021-02-29", "2024-13-01", "2024-00-10", "2024-04-31", "2024-1-011", "20x4-01-01"]
)
def test_dates_that_do_not_exist_are_refused(text):
    with pytest.raises(DecodeError, match="column 'c' \\(date\\)"):
        decode(1082, [b"2024-02-29", text.encode()])


def test_infinite_dates_are_refused():
    with pytest.raises(DecodeError, match="infinity"):
        decode(1082, [b"2026-01-01", b"infinity"])


def test_times_with_and_without_fractions():
    decoded = decode(1083, [b"00:00:00", b"23:59:59.999999", b"12:34:56.5", b"01:02:03.000001", None])
    assert decoded.to_pylist() == [
        dt.time(0, 0),
        dt.time(23, 59, 59, 999999),
        dt.time(12, 34, 56, 500000),
        dt.time(1, 2, 3, 1),
        None,
    ]


def test_time_24_00_is_refused():
    with pytest.raises(DecodeError, match="24:00:00"):
        decode(1083, [b"24:00:00"])


def test_malformed_time_is_refused():
    with pytest.raises(DecodeError, match="HH:MM:SS"):
        decode(1083, [b"12-34-56"])


def test_bytea_and_varbyte_hex_become_bytes():
    assert decode(17, [b"\\x00ff10", b"\\x", None]).to_pylist() == [b"\x00\xff\x10", b"", None]
    assert decode(6551, [b"DEADbeef", b"", b"00"]).to_pylist() == [b"\xde\xad\xbe\xef", b"", b"\x00"]
    assert decode(6551, [bytes(range(256)).hex().encode()]).to_pylist() == [bytes(range(256))]


@pytest.mark.parametrize("bad", [b"abc", b"zz", b"\\x0g"])
def test_bad_hex_is_refused(bad):
    with pytest.raises(DecodeError):
        decode(6551, [bad])


@pytest.mark.parametrize(
    ("oid", "text"),
    [
        (4000, '{"a":[1,"x",null],"b":{"c":true}}'),  # SUPER: JSON text
        (3000, "0101000020E6100000000000000000F03F0000000000000040"),  # GEOMETRY: hex EWKB
        (3001, "0101000020E6100000000000000000F03F0000000000000040"),  # GEOGRAPHY
        (1266, "04:05:06.789-08"),  # TIMETZ
        (1186, "1 day 02:00:00"),  # INTERVAL: the server's text
    ],
)
def test_text_types_keep_the_servers_text(oid, text):
    assert decode(oid, [text.encode(), None]).to_pylist() == [text, None]


def test_many_columns_and_rows_at_once():
    rows = [
        data_row(struct.pack("!q", i), str(i).encode() * (i % 20), None if i % 3 else b"\x01")
        for i in range(5000)
    ]
    columns = [column_for("id", 20, -1), column_for("s", 25, -1), column_for("b", 16, -1)]
    batch = decode_batch(split_rows(rows, 3), columns, schema_of(columns))
    assert batch.column(0).to_pylist() == list(range(5000))
    assert batch.column(1).to_pylist() == [str(i) * (i % 20) for i in range(5000)]
    assert batch.column(2).to_pylist() == [None if i % 3 else True for i in range(5000)]


def test_a_row_with_the_wrong_column_count_is_refused():
    with pytest.raises(DataRowError, match="columns"):
        split_rows([data_row(b"1", b"2"), data_row(b"1")], 2)


def test_a_truncated_row_is_refused():
    with pytest.raises(DataRowError, match="add up"):
        split_rows([data_row(b"1234")[:-1]], 1)


def test_a_binary_field_of_the_wrong_width_is_refused():
    with pytest.raises(DecodeError, match="4 bytes where 8"):
        decode(20, [struct.pack("!i", 1)])


@pytest.mark.parametrize(
    "oid", [16, 20, 21, 23, 700, 701, 1114, 1184, 25, 1043, 1082, 1083, 17, 6551, 4000, 1266]
)
def test_columns_that_are_all_null(oid):
    assert decode(oid, [None, None, None]).to_pylist() == [None, None, None]


@pytest.mark.parametrize(("oid", "expected"), [(25, ""), (4000, ""), (6551, b""), (17, b"")])
def test_columns_that_are_all_empty(oid, expected):
    assert decode(oid, [b"", b""]).to_pylist() == [expected, expected]
