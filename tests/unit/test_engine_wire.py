"""Taking rows off redshift_connector undecoded: what the capture needs from the driver, and restores."""

from __future__ import annotations

import struct

import pytest

from airflow_rs2gcs.engine.types import BINARY_TYPES, WireFormat
from airflow_rs2gcs.engine.wire import (
    DATA_ROW,
    RawRowCapture,
    UnsupportedDriverError,
    check_driver,
    result_format_table,
    result_formats,
)


class FakeConnection:
    """Just the two per-connection tables redshift_connector has."""

    def __init__(self) -> None:
        self.message_types = {DATA_ROW: "driver handler"}
        self.redshift_types = {20: (1, "int8_recv"), 1082: (1, "date_recv_binary")}


class FakeCursor:
    def __init__(self, formats: list[int]) -> None:
        self.ps = {"bind_2": struct.pack("!h", len(formats)) + struct.pack(f"!{len(formats)}h", *formats)}


def test_a_driver_without_the_hooks_is_refused():
    with pytest.raises(UnsupportedDriverError, match=r"redshift_connector 2\.x"):
        check_driver(object())


def test_binary_for_fixed_width_types_text_for_the_rest():
    table = result_format_table({20: (1, "int8_recv")})
    assert {oid: table[oid][0] for oid in BINARY_TYPES} == dict.fromkeys(BINARY_TYPES, WireFormat.BINARY)
    assert table[1082][0] == WireFormat.TEXT  # DATE: the driver would ask binary on protocol 2
    assert table[1700][0] == WireFormat.TEXT  # NUMERIC: Redshift's own binary form on protocol 2
    assert table[4000][0] == WireFormat.TEXT  # SUPER, and any unknown OID
    assert table[20][1] == "int8_recv"


def test_the_capture_collects_rows_and_restores_the_driver():
    connection = FakeConnection()
    with RawRowCapture(connection) as capture:
        handler = connection.message_types[DATA_ROW]
        handler(b"row1", None)
        handler(b"row2", None)
        assert capture.take() == [b"row1", b"row2"]
        connection.message_types[DATA_ROW](b"row3", None)
        assert capture.take() == [b"row3"]
        assert connection.redshift_types[1082][0] == WireFormat.TEXT
    assert connection.message_types[DATA_ROW] == "driver handler"
    assert connection.redshift_types == {20: (1, "int8_recv"), 1082: (1, "date_recv_binary")}


def test_the_bound_result_formats_are_read_back():
    assert result_formats(FakeCursor([1, 0, 0, 1])) == [1, 0, 0, 1]
