"""The text form of every Arrow type in CSV and JSON Lines (what the README's type table promises)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pytest

from airflow_rs2gcs.engine.textforms import csv_field, csv_values, json_escaped, json_values, text_values


@pytest.mark.parametrize(
    ("values", "arrow_type", "expected"),
    [
        (
            ["0.0000000001", "-0.5", "0", None],
            pa.decimal128(38, 10),
            ["0.0000000001", "-0.5000000000", "0.0000000000", None],
        ),
        (
            ["9999999999999999999999999999.9999999999", "-1234.5"],
            pa.decimal128(38, 10),
            ["9999999999999999999999999999.9999999999", "-1234.5000000000"],
        ),
        (["12.30", "-0.01", "100"], pa.decimal128(14, 2), ["12.30", "-0.01", "100.00"]),
        (
            ["12345678901234567890123456789012345678", "-7"],
            pa.decimal128(38, 0),
            ["12345678901234567890123456789012345678", "-7"],
        ),
    ],
)
def test_decimals_in_plain_notation_with_every_digit(values, arrow_type, expected):
    array = pa.array([None if v is None else Decimal(v) for v in values], arrow_type)
    assert text_values(array).to_pylist() == expected


def test_floats_shortest_exact_and_the_three_specials():
    array = pa.array([0.1, 1e38, -0.0, float("nan"), float("inf"), float("-inf"), None])
    assert text_values(array).to_pylist() == ["0.1", "1e+38", "-0.0", "NaN", "Infinity", "-Infinity", None]
    assert json_values(array).to_pylist() == [
        "0.1",
        "1e+38",
        "-0.0",
        '"NaN"',
        '"Infinity"',
        '"-Infinity"',
        "null",
    ]
    assert text_values(pa.array([0.1], pa.float32())).to_pylist() == ["0.1"]


def test_dates_times_and_timestamps():
    moment = dt.datetime(1969, 12, 31, 23, 59, 59, 5)
    assert text_values(pa.array([moment], pa.timestamp("us"))).to_pylist() == ["1969-12-31T23:59:59.000005"]
    aware = pa.array([moment.replace(tzinfo=dt.UTC)], pa.timestamp("us", tz="UTC"))
    assert text_values(aware).to_pylist() == ["1969-12-31T23:59:59.000005Z"]
    assert text_values(pa.array([dt.date(2038, 1, 19)])).to_pylist() == ["2038-01-19"]
    assert text_values(pa.array([-735160], pa.int32()).cast(pa.date32())).to_pylist() == ["-0043-03-15"]
    assert text_values(pa.array([dt.time(23, 59, 59, 999999)])).to_pylist() == ["23:59:59.999999"]


def test_booleans_integers_and_binary():
    assert json_values(pa.array([True, False, None])).to_pylist() == ["true", "false", "null"]
    assert csv_values(pa.array([-(2**63), None], pa.int64())).to_pylist() == [str(-(2**63)), ""]
    assert text_values(pa.array([b"\x00\xff", b"", None])).to_pylist() == ["AP8=", "", None]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("plain", "plain"),
        ("", '""'),
        ("a,b", '"a,b"'),
        ('say "hi"', '"say ""hi"""'),
        ("line\nbreak", '"line\nbreak"'),
        ("cr\rlf", '"cr\rlf"'),
        ("back\\slash", "back\\slash"),
        ("emoji 🚀", "emoji 🚀"),
    ],
)
def test_csv_quotes_exactly_where_rfc_4180_needs_it(text, field):
    assert csv_values(pa.array([text])).to_pylist() == [field]
    assert csv_field(text) == field


def test_csv_null_is_an_empty_unquoted_field():
    assert csv_values(pa.array(["", None])).to_pylist() == ['""', ""]


def test_json_strings_round_trip_through_a_json_parser():
    awkward = [
        '"quoted"',
        "back\\slash",
        "new\nline\r\ttab",
        "ctrl \x01\x1f\x7f",
        "emoji 🚀 日本",
        "",
        "\u2028",
    ]
    encoded = json_escaped(pa.array([*awkward, None])).to_pylist()
    assert encoded[-1] is None
    assert [json.loads(e) for e in encoded[:-1]] == awkward
    assert encoded[0] == '"\\"quoted\\""'
