"""Choosing the row source, and the plain driver path's pieces, with the driver faked at its boundary.

The same reads against the real driver and server are in test_engine_roundtrip.py and
test_engine_export.py; here the fallback rules and the conversions are pinned case by case.
"""

from __future__ import annotations

import datetime as dt
import logging
import struct
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_rs2gcs.engine.datarows import text_fields
from airflow_rs2gcs.engine.decode import DecodeError, decode_batch, text_decoder_for
from airflow_rs2gcs.engine.driver_source import (
    DriverRowSource,
    column_array,
    described_columns,
    text_read_query,
)
from airflow_rs2gcs.engine.rowsource import AutoRowSource, open_row_source
from airflow_rs2gcs.engine.settings import ExportSettings
from airflow_rs2gcs.engine.types import Oid, column_for, schema_of
from airflow_rs2gcs.engine.wire import DATA_ROW, UnsupportedDriverError
from airflow_rs2gcs.engine.wire_source import WireRowSource

EPOCH = dt.datetime(1970, 1, 1)


class FakeCursor:
    """A DB-API cursor over canned results: ``description`` and rows per statement kind."""

    def __init__(self, connection: FakeConnection) -> None:
        self.connection = connection
        self.description: list[tuple] | None = None
        self.ps: dict[str, Any] = {}
        self._rows: list[tuple] = []

    def execute(self, sql: str) -> None:
        self.connection.statements.append(sql)
        if sql.startswith("SELECT * FROM ("):
            self.description, self._rows = self.connection.description, []
            self.ps = {"row_desc": self.connection.row_desc} if self.connection.row_desc else {}
        elif sql.startswith("DECLARE"):
            self.connection.remaining = list(self.connection.rows)
        elif sql.startswith("FETCH"):
            size, remaining = int(sql.split()[2]), self.connection.remaining
            self._rows, self.connection.remaining = remaining[:size], remaining[size:]
            self.description = self.connection.description

    def fetchall(self) -> list[tuple]:
        return self._rows

    def close(self) -> None:
        pass


class FakeConnection:
    """A connection with no fast-path internals (a driver that changed them): only DB-API."""

    def __init__(self, description: list[tuple], rows: list[tuple], row_desc: list[dict] | None = None):
        self.autocommit = False
        self.description = description
        self.rows = rows
        self.remaining: list[tuple] = []
        self.row_desc = row_desc
        self.statements: list[str] = []

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def rollback(self) -> None:
        self.statements.append("<rollback>")


def driver_rows(description: list[tuple], rows: list[tuple], **options: int) -> pa.Table:
    source = DriverRowSource(FakeConnection(description, rows), "SELECT * FROM t", **options)
    batches = list(source.batches())
    assert source.schema is not None
    return pa.Table.from_batches(batches, schema=source.schema)


def test_an_unknown_fetch_method_is_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match="fetch_method 'fast' is not supported; allowed: auto, wire, driver"):
        ExportSettings(fetch_method="fast")


def test_each_fetch_method_opens_its_row_source():
    connection = FakeConnection([], [])
    sources = {
        m: open_row_source(connection, "SELECT 1", ExportSettings(fetch_method=m)) for m in ("wire", "driver")
    }
    assert isinstance(sources["wire"], WireRowSource) and isinstance(sources["driver"], DriverRowSource)
    assert isinstance(open_row_source(connection, "SELECT 1", ExportSettings()), AutoRowSource)


def test_auto_falls_back_to_the_driver_api_with_one_warning_naming_the_driver(caplog):
    connection = FakeConnection([("id", Oid.INT8, None, None, None, None, None)], [(1,), (2,)])
    source = AutoRowSource(connection, "SELECT id FROM t", fetch_size=10, batch_rows=10, batch_bytes=1024)
    with caplog.at_level(logging.WARNING, logger="airflow_rs2gcs.engine.rowsource"):
        batches = list(source.batches())
    assert [b.to_pydict() for b in batches] == [{"id": [1, 2]}]
    assert source.method == "driver" and source.rows_read == 2
    [warning] = caplog.records
    assert "fast read path is unavailable" in warning.getMessage()
    assert "redshift_connector 2." in warning.getMessage()


def test_wire_alone_fails_on_a_driver_without_its_internals():
    connection = FakeConnection([("id", Oid.INT8, None, None, None, None, None)], [(1,)])
    with pytest.raises(UnsupportedDriverError, match=r"^redshift_connector 2\.\S+: no per-connection"):
        list(WireRowSource(connection, "SELECT id FROM t").batches())
    assert connection.statements[-1] == "<rollback>"


def test_auto_falls_back_when_the_fast_path_refuses_the_bound_formats_before_its_first_batch(monkeypatch):
    connection = FakeConnection([("id", Oid.INT8, None, None, None, None, None)], [(7,)])
    connection.message_types = {DATA_ROW: None}
    connection.redshift_types = {}

    def refuse(self: WireRowSource, cursor: Any) -> None:
        raise UnsupportedDriverError("the driver bound result formats [0], the engine asked for [1]")

    monkeypatch.setattr(WireRowSource, "_describe", refuse)
    source = AutoRowSource(connection, "SELECT id FROM t", fetch_size=10, batch_rows=10, batch_bytes=1024)
    assert [b.to_pydict() for b in source.batches()] == [{"id": [7]}]
    assert source.method == "driver"
    # the fast try was rolled back first
    assert connection.statements.count("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") == 2


def test_text_typed_columns_are_cast_to_varchar_and_the_rest_read_as_the_driver_gives_them():
    columns = [
        column_for("id", Oid.INT8, -1),
        column_for("name", Oid.BPCHAR, 9),
        column_for("amount", Oid.NUMERIC, ((14 << 16) | 2) + 4),
        column_for("at", Oid.TIMESTAMPTZ, -1),
        column_for("raw", Oid.VARBYTE, -1),
        column_for("doc", Oid.SUPER, -1),
    ]
    assert text_read_query("SELECT * FROM t", columns) == (
        "SELECT c1, c2, CAST(c3 AS VARCHAR), CAST(c4 AS VARCHAR), FROM_VARBYTE(c5, 'hex'), c6 "
        "FROM (SELECT * FROM t) AS rs2gcs_rows(c1, c2, c3, c4, c5, c6)"
    )


def test_decimal_sizes_come_from_the_row_description_when_the_driver_keeps_one():
    description = [("amount", Oid.NUMERIC, None, None, None, None, None)]
    sized = described_columns(description, [((14 << 16) | 2) + 4])
    assert sized[0].arrow_type == pa.decimal128(14, 2)
    assert described_columns(description, None)[0].arrow_type == pa.string()  # unknown: exact text


def test_a_driver_without_a_row_description_writes_decimals_as_exact_text_with_a_warning(caplog):
    description = [("amount", Oid.NUMERIC, None, None, None, None, None)]
    with caplog.at_level(logging.WARNING, logger="airflow_rs2gcs.engine.driver_source"):
        table = driver_rows(description, [("12.30",), (None,)])
    assert table.column("amount").to_pylist() == ["12.30", None]
    assert "no precision and scale for the DECIMAL column(s) amount" in caplog.text


def test_driver_values_become_the_type_mappings_arrow_types():
    description = [
        ("id", Oid.INT8, None, None, None, None, None),
        ("ok", Oid.BOOL, None, None, None, None, None),
        ("ratio", Oid.FLOAT4, None, None, None, None, None),
        ("day", Oid.DATE, None, None, None, None, None),
        ("amount", Oid.NUMERIC, None, None, None, None, None),
        ("label", Oid.BPCHAR, None, None, None, None, None),
    ]
    row_desc = [{"type_modifier": m} for m in (-1, -1, -1, -1, ((5 << 16) | 2) + 4, 9)]
    connection = FakeConnection(description, [(1, True, 0.5, "0044-03-15 BC", "-1.50", "ab   ")], row_desc)
    table = pa.Table.from_batches(list(DriverRowSource(connection, "SELECT * FROM t").batches()))
    assert table.schema.types == [
        pa.int64(),
        pa.bool_(),
        pa.float32(),
        pa.date32(),
        pa.decimal128(5, 2),
        pa.string(),
    ]
    row = table.drop_columns(["day"]).to_pylist()[0]
    assert row == {"id": 1, "ok": True, "ratio": 0.5, "amount": Decimal("-1.50"), "label": "ab   "}
    assert table.column("day").cast(pa.int32()).to_pylist() == [civil_days_of(-43, 3, 15)]  # 44 BC


def test_batches_follow_batch_rows_across_fetches():
    description = [("id", Oid.INT4, None, None, None, None, None)]
    source = DriverRowSource(
        FakeConnection(description, [(i,) for i in range(25)]),
        "SELECT id FROM t",
        fetch_size=7,
        batch_rows=10,
    )
    assert [b.num_rows for b in source.batches()] == [10, 10, 5]
    assert source.rows_read == 25


def test_an_empty_result_has_its_schema_and_no_batch():
    description = [("id", Oid.INT4, None, None, None, None, None)]
    source = DriverRowSource(FakeConnection(description, []), "SELECT id FROM t")
    assert list(source.batches()) == []
    assert source.schema == schema_of([column_for("id", Oid.INT4, -1)])


def test_a_value_the_driver_did_not_give_as_text_is_refused_with_the_column():
    column = column_for("day", Oid.DATE, -1)
    with pytest.raises(DecodeError, match=r"column 'day' \(date\): redshift_connector .* returned a date"):
        column_array(column, [dt.date(2020, 1, 1)])


# -- TIMESTAMP(TZ) text, as a cast to VARCHAR gives it, decodes to what the binary form decodes to ------
def timestamp_text(micros: int, zoned: bool) -> str:
    """PostgreSQL's ISO text of a timestamp (time zone UTC), BC and years past 9999 included."""
    days, clock = divmod(micros, 86_400_000_000)
    year, month, day = civil_from_days(days)
    seconds, fraction = divmod(clock, 1_000_000)
    text = f"{(1 - year) if year <= 0 else year:04d}-{month:02d}-{day:02d} "
    text += f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    text += f".{fraction:06d}".rstrip("0") if fraction else ""
    return text + ("+00" if zoned else "") + (" BC" if year <= 0 else "")


def civil_from_days(days: int) -> tuple[int, int, int]:
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, doy - (153 * mp + 2) // 5 + 1


def binary_decoded(micros: list[int | None], oid: int) -> pa.Array:
    column = column_for("t", oid, -1)
    bodies = [
        struct.pack("!hi", 1, -1) if m is None else struct.pack("!hiq", 1, 8, m - 946_684_800_000_000)
        for m in micros
    ]
    from airflow_rs2gcs.engine.datarows import split_rows

    return decode_batch(split_rows(bodies, 1), [column], schema_of([column])).column(0)


def text_decoded(texts: list[str | None], oid: int) -> pa.Array:
    column = column_for("t", oid, -1)
    batch, refs = text_fields(texts)
    return text_decoder_for(column)(batch, refs, column)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.integers(-210_866_803_200_000_000, 9_000_000_000_000_000_000)), max_size=40
    ),
    st.sampled_from([Oid.TIMESTAMP, Oid.TIMESTAMPTZ]),
)
def test_timestamp_text_decodes_to_the_same_instant_as_the_binary_form(micros, oid):
    texts = [None if m is None else timestamp_text(m, oid == Oid.TIMESTAMPTZ) for m in micros]
    assert text_decoded(texts, oid).equals(binary_decoded(micros, oid))


@pytest.mark.parametrize(
    ("text", "oid"),
    [
        ("infinity", Oid.TIMESTAMP),
        ("-infinity", Oid.TIMESTAMPTZ),
        ("2024-01-01 00:00:00", Oid.TIMESTAMPTZ),  # no zone where one is due
        ("2024-01-01 00:00:00+00", Oid.TIMESTAMP),
        ("2024-02-30 00:00:00", Oid.TIMESTAMP),
        ("2024-01-01 24:00:00", Oid.TIMESTAMP),
        ("2024-01-01T00:00:00", Oid.TIMESTAMP),
    ],
)
def test_timestamp_texts_that_cannot_be_held_are_refused(text, oid):
    with pytest.raises(DecodeError):
        text_decoded([text], oid)


def test_timestamp_text_examples():
    moments = text_decoded(["2020-01-01 00:00:00.5", "1969-12-31 23:59:59.999999", None], Oid.TIMESTAMP)
    assert moments.to_pylist() == [
        dt.datetime(2020, 1, 1, 0, 0, 0, 500_000),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999_999),
        None,
    ]
    far = text_decoded(["12345-01-01 01:02:03+00", "0044-03-15 12:00:00.5+00 BC"], Oid.TIMESTAMPTZ)
    assert far.cast(pa.int64()).to_pylist() == [
        ((civil_days_of(12345, 1, 1) * 86400) + 3723) * 1_000_000,
        ((civil_days_of(-43, 3, 15) * 86400) + 43200) * 1_000_000 + 500_000,
    ]


def civil_days_of(year: int, month: int, day: int) -> int:
    from airflow_rs2gcs.engine.decode import civil_days

    return int(civil_days(year, month, day))


def test_micros_helper_matches_pythons_calendar():
    moment = dt.datetime(2024, 2, 29, 13, 14, 15, 16)
    micros = (moment - EPOCH) // dt.timedelta(microseconds=1)
    assert timestamp_text(micros, False) == "2024-02-29 13:14:15.000016"
