"""Value for value: a random table full of awkward values goes Redshift -> GCS and comes back exactly.

The table is generated here from a random seed (a new one each run; ``RS2GCS_TEST_SEED`` replays one,
and every failure message names it), loaded into the local "Redshift" (PostgreSQL 16 behind the
shim, through the real driver) and exported by the real engine to fake-gcs-server in all three
formats. Each format is read back with an independent reader (pyarrow's Parquet and RFC 4180 CSV
readers, ``json``) and parsed with the text forms the README documents, then compared with the
generated values: NULLs, extremes (dates before 1970 and after 2038, BC and after 9999,
numeric(38,10) at full width, NaN/Infinity/-0.0), and text with delimiters, quotes, newlines,
backslashes, control characters, emoji and empty strings distinct from NULL.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import gzip
import io
import json
import logging
import math
import os
import random
import re
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from airflow_rs2gcs.engine.decode import civil_days

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SEED = int(os.environ.get("RS2GCS_TEST_SEED", time.time_ns() % 2**32))
TABLE = "public.rs2gcs_roundtrip"
BUCKET = "roundtrip"
RANDOM_ROWS = 300
EPOCH = dt.datetime(1970, 1, 1)
FRAGMENTS = [
    ",",
    '"',
    "'",
    "\n",
    "\r\n",
    "\r",
    "\t",
    "\\",
    "\\N",
    "NULL",
    "null",
    "🚀",
    "👩‍👩‍👧",
    "日本語",
    "مرحبا",
    "\u2028",
    "\x01",
    "\x1f",
    "\x7f",
    " ",
    "a",
    "0",
    "-1.5e10",
    "{",
    "}",
    "[",
    "]",
    ":",
    ";",
    "|",
    "€",
    "ß",
    "=",
    "\\x00",
    "Z",
    "true",
    "",
]


# -- the columns: how to generate a value, write it as a SQL literal, and read it back -------------------
@dataclass(frozen=True)
class Spec:
    """One column: its SQL type, a random value generator, its SQL literal and its kind of text form."""

    name: str
    sql_type: str
    kind: str
    generate: Callable[[random.Random], Any]
    literal: Callable[[Any], str]
    extremes: tuple[Any, ...] = ()


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def awkward(rng: random.Random, most: int = 12) -> str:
    return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, most)))


def decimal_value(rng: random.Random, precision: int, scale: int) -> Decimal:
    return Decimal(rng.randint(-(10**precision) + 1, 10**precision - 1)).scaleb(-scale)


def date_literal(days: int) -> str:
    year, month, day = days_to_civil(days)
    return (
        f"'{(1 - year) if year <= 0 else year:04d}-{month:02d}-{day:02d}{' BC' if year <= 0 else ''}'::date"
    )


def days_to_civil(days: int) -> tuple[int, int, int]:
    """Inverse of civil_days (astronomical years)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def clock_text(micros: int) -> str:
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{fraction:06d}"


def timestamp_literal(micros: int, cast: str, offset_minutes: int = 0) -> str:
    local = EPOCH + dt.timedelta(microseconds=micros + offset_minutes * 60_000_000)
    sign = "+" if offset_minutes >= 0 else "-"
    zone = f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    day = f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
    clock = clock_text(micros_of(local) - micros_of(local.replace(hour=0, minute=0, second=0, microsecond=0)))
    return f"'{day} {clock}{zone if cast == 'timestamptz' else ''}'::{cast}"


def micros_of(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(microseconds=1)


def float32(value: float) -> float:
    return float(np.float32(value))


def float_literal(value: float, cast: str) -> str:
    if math.isnan(value):
        return f"'NaN'::{cast}"
    if math.isinf(value):
        return f"'{'-' if value < 0 else ''}Infinity'::{cast}"
    return f"'{value!r}'::{cast}"


def timetz_value(rng: random.Random) -> str:
    """A TIMETZ as PostgreSQL prints it: fraction without trailing zeros, minutes only when not 0."""
    micros = rng.randrange(86_400_000_000)
    fraction = micros % 1_000_000
    text = clock_text(micros)[:8] + ("." + f"{fraction:06d}".rstrip("0") if fraction else "")
    offset = rng.choice([0, 60, -480, 330, -570, 840])
    sign = "+" if offset >= 0 else "-"
    return text + f"{sign}{abs(offset) // 60:02d}" + (f":{abs(offset) % 60:02d}" if offset % 60 else "")


def json_doc(rng: random.Random) -> str:
    doc = {
        awkward(rng, 3): [
            rng.randint(-(2**53), 2**53),
            awkward(rng),
            None,
            rng.random() < 0.5,
            {"n": rng.random()},
        ]
    }
    return json.dumps(doc, ensure_ascii=rng.random() < 0.5)


SPECS = [
    Spec("c_smallint", "smallint", "int", lambda r: r.randint(-32768, 32767), str, (-32768, 32767)),
    Spec("c_int", "integer", "int", lambda r: r.randint(-(2**31), 2**31 - 1), str, (-(2**31), 2**31 - 1)),
    Spec(
        "c_bigint",
        "bigint",
        "int",
        lambda r: r.randint(-(2**63), 2**63 - 1),
        lambda v: f"'{v}'::bigint",
        (-(2**63), 2**63 - 1),
    ),
    Spec(
        "c_num38",
        "numeric(38,10)",
        "decimal:10",
        lambda r: decimal_value(r, 38, 10),
        lambda v: f"{format(v, 'f')}::numeric(38,10)",
        (
            Decimal("9999999999999999999999999999.9999999999"),
            Decimal("-9999999999999999999999999999.9999999999"),
            Decimal("0.0000000001"),
        ),
    ),
    Spec(
        "c_num14",
        "numeric(14,2)",
        "decimal:2",
        lambda r: decimal_value(r, 14, 2),
        lambda v: format(v, "f"),
        (Decimal("-0.50"),),
    ),
    Spec(
        "c_real",
        "real",
        "float32",
        lambda r: float32(r.uniform(-1e30, 1e30) * r.choice([1, 1e-30])),
        lambda v: float_literal(v, "real"),
        (float32(3.4028235e38), float32(1e-45), math.nan, -math.inf, -0.0),
    ),
    Spec(
        "c_double",
        "double precision",
        "float",
        lambda r: struct.unpack("!d", struct.pack("!Q", r.getrandbits(64)))[0],
        lambda v: float_literal(v, "double precision"),
        (1.7976931348623157e308, 5e-324, -0.0, math.inf, math.nan, 0.1),
    ),
    Spec(
        "c_bool",
        "boolean",
        "bool",
        lambda r: r.random() < 0.5,
        lambda v: "true" if v else "false",
        (True, False),
    ),
    Spec("c_char", "char(5)", "str", lambda r: awkward(r, 1)[:5].ljust(5), quote, ("     ", "🚀ab  ")),
    Spec(
        "c_varchar", "varchar(300)", "str", lambda r: awkward(r)[:300], quote, ("", 'only "quotes"', "a,b\nc")
    ),
    Spec("c_text", "text", "str", lambda r: awkward(r, 60), quote, ("", "\\N", "NULL", "x" * 5000)),
    Spec(
        "c_date",
        "date",
        "date",
        lambda r: r.randint(civil_days(-4712, 11, 24), civil_days(12000, 1, 1)),
        date_literal,
        (
            civil_days(-4712, 11, 24),
            civil_days(1969, 12, 31),
            civil_days(2038, 1, 20),
            civil_days(9999, 12, 31),
            civil_days(12345, 6, 7),
            civil_days(0, 12, 31),
            civil_days(1, 1, 1),
        ),
    ),
    Spec(
        "c_timestamp",
        "timestamp",
        "timestamp",
        lambda r: r.randint(
            micros_of(dt.datetime(1, 1, 1)), micros_of(dt.datetime(9999, 12, 31, 23, 59, 59, 999999))
        ),
        lambda v: timestamp_literal(v, "timestamp"),
        (
            micros_of(dt.datetime(1, 1, 1)),
            -1,
            micros_of(dt.datetime(2038, 1, 19, 3, 14, 8)),
            micros_of(dt.datetime(9999, 12, 31, 23, 59, 59, 999999)),
        ),
    ),
    Spec(
        "c_timestamptz",
        "timestamptz",
        "timestamptz",
        lambda r: r.randint(micros_of(dt.datetime(2, 1, 1)), micros_of(dt.datetime(9999, 12, 30))),
        lambda v: timestamp_literal(v, "timestamptz", offset_minutes=(v // 7) % 1000 - 500),
        (-1, micros_of(dt.datetime(2040, 2, 29, 12)), micros_of(dt.datetime(1901, 12, 13, 20, 45, 52))),
    ),
    Spec(
        "c_time",
        "time",
        "time",
        lambda r: r.randrange(86_400_000_000),
        lambda v: f"'{clock_text(v)}'::time",
        (0, 86_399_999_999),
    ),
    Spec("c_timetz", "timetz", "str", timetz_value, lambda v: f"{quote(v)}::timetz", ("00:00:00+00",)),
    Spec(
        "c_super",
        "json",
        "str",
        json_doc,
        lambda v: f"{quote(v)}::json",
        ('{"a": [1, "x", null]}', '"just a string"', "[]"),
    ),
    Spec(
        "c_varbyte",
        "bytea",
        "bytes",
        lambda r: r.randbytes(r.randint(0, 40)),
        lambda v: f"'\\x{v.hex()}'::bytea",
        (b"", b"\x00", bytes(range(256))),
    ),
]


def generate_rows(rng: random.Random) -> list[dict[str, Any]]:
    """Fixed extremes first, then random rows; about 15% NULLs; one row entirely NULL."""
    rows = []
    longest = max(len(s.extremes) for s in SPECS)
    for index in range(longest):
        rows.append({s.name: s.extremes[index % len(s.extremes)] if s.extremes else None for s in SPECS})
    rows.append(dict.fromkeys((s.name for s in SPECS), None))
    for _ in range(RANDOM_ROWS):
        rows.append({s.name: None if rng.random() < 0.15 else s.generate(rng) for s in SPECS})
    for row_id, row in enumerate(rows, start=1):
        row["id"] = row_id
    return rows


def insert_sql(rows: list[dict[str, Any]]) -> str:
    columns = ", ".join(f"{s.name} {s.sql_type}" for s in SPECS)
    values = ",\n".join(
        "("
        + ", ".join(
            [str(row["id"])] + [("NULL" if row[s.name] is None else s.literal(row[s.name])) for s in SPECS]
        )
        + ")"
        for row in rows
    )
    names = ", ".join(["id"] + [s.name for s in SPECS])
    create = f"DROP TABLE IF EXISTS {TABLE};\nCREATE TABLE {TABLE} (id bigint, {columns});\n"
    return f"{create}INSERT INTO {TABLE} ({names}) VALUES\n{values};\n"


# -- reading the text forms back (as the README documents them) ------------------------------------------
DATE_TEXT = re.compile(r"^(-?\d{4,})-(\d{2})-(\d{2})$")
TIMESTAMP_TEXT = re.compile(r"^(-?\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})(Z?)$")
TIME_TEXT = re.compile(r"^(\d{2}):(\d{2}):(\d{2})\.(\d{6})$")


def parse_text(kind: str, text: str) -> Any:
    """One value's text form (CSV field or JSON string) -> the generated Python value."""
    if kind == "int":
        return int(text)
    if kind in ("float", "float32"):
        assert text in ("NaN", "Infinity", "-Infinity") or re.match(r"^-?\d+(\.\d+)?(e[+-]\d+)?$", text), text
        return float32(float(text)) if kind == "float32" else float(text)  # the shortest float32 text
    if kind.startswith("decimal:"):
        scale = int(kind.split(":")[1])
        assert re.match(rf"^-?\d+\.\d{{{scale}}}$", text), (
            f"not plain notation with {scale} decimals: {text!r}"
        )
        return Decimal(text)
    if kind == "bool":
        return {"true": True, "false": False}[text]
    if kind == "date":
        year, month, day = DATE_TEXT.match(text).groups()  # type: ignore[union-attr]
        return civil_days(int(year), int(month), int(day))
    if kind in ("timestamp", "timestamptz"):
        match = TIMESTAMP_TEXT.match(text)
        assert match and bool(match[8]) == (kind == "timestamptz"), text
        days = civil_days(int(match[1]), int(match[2]), int(match[3]))
        return (
            days * 86_400_000_000
            + ((int(match[4]) * 60 + int(match[5])) * 60 + int(match[6])) * 1_000_000
            + int(match[7])
        )
    if kind == "time":
        hours, minutes, seconds, micros = TIME_TEXT.match(text).groups()  # type: ignore[union-attr]
        return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1_000_000 + int(micros)
    if kind == "bytes":
        return base64.b64decode(text, validate=True)
    return text


def same(kind: str, expected: Any, got: Any) -> bool:
    if expected is None or got is None:
        return expected is None and got is None
    if kind in ("float", "float32"):
        if math.isnan(expected):
            return isinstance(got, float) and math.isnan(got)
        return struct.pack("!d", expected) == struct.pack("!d", float(got))
    if kind.startswith("decimal:"):
        return Decimal(got) == expected
    return bool(expected == got) and type(expected) is type(got)


def read_parquet(data: bytes) -> list[dict[str, Any]]:
    return read_parquet_table(pq.read_table(io.BytesIO(data)))


def read_parquet_table(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as dicts; dates, times and timestamps as integers (Python's cannot hold them all)."""
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_date32(column.type):
            column = column.cast(pa.int32())
        elif pa.types.is_timestamp(column.type) or pa.types.is_time64(column.type):
            column = column.cast(pa.int64())
        columns[name] = column.to_pylist()
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def read_csv(data: bytes) -> list[dict[str, Any]]:
    names = data.split(b"\n", 1)[0].decode().split(",")
    options = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        null_values=[""],
    )
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    table = pa_csv.read_csv(io.BytesIO(data), parse_options=parse, convert_options=options)
    kinds = {s.name: s.kind for s in SPECS} | {"id": "int"}
    return [
        {k: None if v is None else parse_text(kinds[k], v) for k, v in row.items()}
        for row in table.to_pylist()
    ]


def read_jsonl(data: bytes) -> list[dict[str, Any]]:
    kinds = {s.name: s.kind for s in SPECS} | {"id": "int"}
    rows = []
    for line in data.decode("utf-8").split("\n")[:-1]:
        raw = json.loads(line)
        row = {}
        for key, value in raw.items():
            kind = kinds[key]
            if value is None or kind in ("int", "bool"):
                row[key] = value
            elif kind in ("float", "float32") and not isinstance(value, str):
                row[key] = float32(value) if kind == "float32" else float(value)
            else:
                row[key] = parse_text(kind, value)
        rows.append(row)
    return rows


READERS = {"parquet": read_parquet, "csv": read_csv, "jsonl": read_jsonl}


# -- the test ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def source(stack):
    rows = generate_rows(random.Random(SEED))
    stack.postgres.psql(
        insert_sql(rows) + f'GRANT SELECT ON {TABLE} TO "{stack.postgres.user}";',
        database=stack.postgres.database,
    )
    stack.gcs.create_bucket(BUCKET)
    return rows


def export_table(fetch_method: str, export_format: str, compression: str, prefix: str, **settings: Any):
    """Export the round-trip table with ``fetch_method``; the ExportResult and the landed objects."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    from airflow_rs2gcs.engine.export import run_export
    from airflow_rs2gcs.engine.settings import ExportSettings

    gcs = GCSHook(gcp_conn_id="rs2gcs_gcs")
    connection = RedshiftSQLHook(redshift_conn_id="rs2gcs_redshift").get_conn()
    if fetch_method == "auto, fast path unavailable":
        connection, fetch_method = DriverWithoutInternals(connection), "auto"
    try:
        result = run_export(
            connection=connection,
            gcs_hook=gcs,
            sql=f"SELECT * FROM {TABLE} ORDER BY id",
            bucket=BUCKET,
            object_prefix=prefix,
            settings=ExportSettings(export_format, compression, fetch_method=fetch_method, **settings),
            data_interval=(None, None),
        )
    finally:
        connection.close()
    manifest = json.loads(gcs.download(BUCKET, result.manifest))
    objects = [gcs.download(BUCKET, listed["name"]) for listed in manifest["objects"]]
    for listed, data in zip(manifest["objects"], objects, strict=True):
        assert len(data) == listed["bytes"]
    return result, manifest, objects


def same_values(table: pa.Table, other: pa.Table) -> bool:
    """Value for value, NaN equal to NaN (Arrow's ``equals`` says NaN differs from itself)."""
    if table.schema != other.schema or table.num_rows != other.num_rows:
        return False
    for row, other_row in zip(read_parquet_table(table), read_parquet_table(other), strict=True):
        for value, other_value in zip(row.values(), other_row.values(), strict=True):
            if isinstance(value, float) and isinstance(other_value, float):
                if struct.pack("!d", value) != struct.pack("!d", other_value):
                    return False
            elif value != other_value or type(value) is not type(other_value):
                return False
    return True


@contextlib.contextmanager
def records_of(logger: str, records: list[logging.LogRecord]) -> Iterator[None]:
    """Collect what ``logger`` emits into ``records`` (pytest's caplog misses records after Airflow
    reconfigures logging mid-test)."""
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger(logger).addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger(logger).removeHandler(handler)


class DriverWithoutInternals:
    """A ``redshift_connector`` connection as a driver without the fast path's internals shows it."""

    def __init__(self, connection: Any) -> None:
        object.__setattr__(self, "_connection", connection)

    def __getattr__(self, name: str) -> Any:
        if name in ("message_types", "redshift_types"):
            raise AttributeError(name)
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connection, name, value)


@pytest.mark.parametrize("fetch_method", ["wire", "driver"])
@pytest.mark.parametrize(
    ("export_format", "compression"),
    [
        ("parquet", "snappy"),
        ("parquet", "zstd"),
        ("csv", "none"),
        ("csv", "gzip"),
        ("jsonl", "none"),
        ("jsonl", "gzip"),
    ],
)
def test_every_value_comes_back_exactly(source, stack_env, export_format, compression, fetch_method):
    prefix = f"roundtrip/{fetch_method}/{export_format}-{compression}"
    # Small fetches, batches and files: FETCH results are joined and cut, files roll, uploads overlap.
    small = {"fetch_size": 37, "batch_rows": 50, "max_file_bytes": 20_000}
    result, manifest, objects = export_table(fetch_method, export_format, compression, prefix, **small)
    assert manifest["rows"] == len(source), f"seed {SEED}"
    assert result.objects > 1 or compression == "gzip", (
        "files roll (gzip buffers 64 KiB before the bound shows)"
    )
    landed = []
    for data in objects:
        landed += READERS[export_format](
            gzip.decompress(data) if compression == "gzip" and export_format != "parquet" else data
        )
    landed.sort(key=lambda row: row["id"])
    assert [row["id"] for row in landed] == [row["id"] for row in source], f"seed {SEED}"
    kinds = {s.name: s.kind for s in SPECS}
    for want, got in zip(source, landed, strict=True):
        for name, kind in kinds.items():
            assert same(kind, want[name], got[name]), (
                f"seed {SEED}, {export_format}, {fetch_method}, row {want['id']}, {name}: "
                f"sent {want[name]!r}, got {got[name]!r}"
            )


@pytest.mark.parametrize("export_format", ["parquet", "csv", "jsonl"])
def test_the_plain_driver_path_writes_what_the_fast_path_writes(source, stack_env, export_format):
    """Same Parquet schema and values, same CSV and JSON Lines text; also when ``auto`` falls back."""
    outputs = {}
    warnings: list[logging.LogRecord] = []
    for method, folder in (("wire", "wire"), ("driver", "driver"), ("auto, fast path unavailable", "auto")):
        prefix = f"roundtrip-equal/{export_format}/{folder}"
        # Attached after the first export: Airflow configures logging when its hooks first load.
        with records_of("airflow_rs2gcs.engine.rowsource", warnings) if outputs else contextlib.nullcontext():
            _, manifest, objects = export_table(method, export_format, "none", prefix, max_file_bytes=2**30)
        assert len(objects) == 1, "one file each, so that the bytes can be compared whole"
        outputs[method] = (manifest, objects[0])
    [fallback] = [r.getMessage() for r in warnings if r.levelno == logging.WARNING]
    assert "fast read path is unavailable" in fallback and "redshift_connector 2." in fallback
    (wire_manifest, wire), *others = outputs.values()
    for manifest, data in others:
        assert manifest["schema"] == wire_manifest["schema"] and manifest["rows"] == wire_manifest["rows"]
        if export_format == "parquet":
            wire_table, table = pq.read_table(io.BytesIO(wire)), pq.read_table(io.BytesIO(data))
            assert table.schema.equals(wire_table.schema, check_metadata=True)
            assert same_values(table, wire_table), f"seed {SEED}"
        else:
            assert data == wire, f"seed {SEED}"
