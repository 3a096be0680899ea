"""Local file encoding: Parquet row groups, RFC 4180 CSV, JSON Lines, gzip, rolling at a size bound."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import get_args

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from airflow_rs2gcs.engine.encoders import LocalFile, ParquetCompression, RollingFileWriter
from airflow_rs2gcs.engine.settings import COMPRESSIONS, ExportSettings, check_format, file_extension

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("amount", pa.decimal128(14, 2)),
        ("note", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("day", pa.date32()),
        ("ok", pa.bool_()),
        ("raw", pa.binary()),
        ("ratio", pa.float64()),
    ]
)
NOTES = ["plain", "", None, 'a,"b"\nc', "emoji 🚀", "back\\slash", "\x01ctrl"]


def batch(start: int, count: int) -> pa.RecordBatch:
    ids = list(range(start, start + count))
    return pa.record_batch(
        [
            pa.array(ids, pa.int64()),
            pa.array([Decimal(i).scaleb(-2) if i % 5 else None for i in ids], pa.decimal128(14, 2)),
            pa.array([NOTES[i % len(NOTES)] for i in ids]),
            pa.array(
                [dt.datetime(1960, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i) for i in ids],
                SCHEMA.field("at").type,
            ),
            pa.array([dt.date(2040, 1, 1) - dt.timedelta(days=i) for i in ids]),
            pa.array([i % 2 == 0 for i in ids]),
            pa.array([bytes([i % 256]) * (i % 3) for i in ids]),
            pa.array([float("nan") if i % 7 == 0 else i / 3 for i in ids]),
        ],
        schema=SCHEMA,
    )


def write(
    tmp_path: Path,
    export_format: str,
    compression: str,
    batches: list[pa.RecordBatch],
    max_bytes: int = 1 << 30,
):
    files: list[LocalFile] = []
    writer = RollingFileWriter(str(tmp_path), export_format, compression, SCHEMA, max_bytes, files.append)
    for b in batches:
        writer.write(b)
    writer.close(write_empty=True)
    return files


def test_parquet_round_trip_with_large_row_groups(tmp_path):
    files = write(tmp_path, "parquet", "zstd", [batch(i * 16384, 16384) for i in range(5)])
    assert len(files) == 1 and files[0].rows == 5 * 16384
    parquet = pq.ParquetFile(files[0].path)
    assert parquet.metadata.num_row_groups == 2  # 65,536 + 16,384 rows, not one per batch
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    expected = pa.Table.from_batches([batch(i * 16384, 16384) for i in range(5)])
    got = parquet.read()
    assert got.drop_columns(["ratio"]).equals(expected.drop_columns(["ratio"]))  # NaN != NaN
    np.testing.assert_array_equal(got.column("ratio").to_numpy(), expected.column("ratio").to_numpy())
    assert got.schema.field("note").type == pa.string()


def test_rolls_at_the_size_bound(tmp_path):
    files = write(tmp_path, "csv", "none", [batch(i * 1000, 1000) for i in range(10)], max_bytes=150_000)
    assert len(files) > 1
    assert [f.index for f in files] == list(range(len(files)))
    assert sum(f.rows for f in files) == 10_000
    assert all(Path(f.path).stat().st_size == f.size for f in files)


def read_csv(path: str) -> pa.Table:
    """An independent RFC 4180 reader: unquoted empty fields are NULL, quoted ones empty strings."""
    options = pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in SCHEMA.names},
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        null_values=[""],
    )
    return pa_csv.read_csv(
        path, parse_options=pa_csv.ParseOptions(newlines_in_values=True), convert_options=options
    )


def test_csv_is_rfc_4180_with_null_distinct_from_empty(tmp_path):
    files = write(tmp_path, "csv", "none", [batch(0, 70)])
    table = read_csv(files[0].path)
    assert table.column_names == SCHEMA.names
    assert table.column("note").to_pylist() == [NOTES[i % len(NOTES)] for i in range(70)]
    assert table.column("amount").to_pylist()[:3] == [None, "0.01", "0.02"]
    assert table.column("ok").to_pylist()[:2] == ["true", "false"]
    assert table.column("at").to_pylist()[1] == "1960-01-01T00:00:01.000000Z"
    assert table.column("ratio").to_pylist()[:2] == ["NaN", "0.3333333333333333"]
    assert table.column("raw").to_pylist()[:3] == ["", "AQ==", "AgI="]


def test_jsonl_is_one_object_per_line(tmp_path):
    files = write(tmp_path, "jsonl", "gzip", [batch(0, 30), batch(30, 30)])
    lines = gzip.decompress(Path(files[0].path).read_bytes()).decode("utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 60
    assert list(rows[1]) == SCHEMA.names
    assert [r["note"] for r in rows] == [NOTES[i % len(NOTES)] for i in range(60)]
    assert rows[1]["amount"] == "0.01" and rows[0]["amount"] is None
    assert rows[0]["ratio"] == "NaN" and rows[1]["ratio"] == 1 / 3
    assert rows[2]["day"] == "2039-12-30" and rows[2]["ok"] is True


@pytest.mark.parametrize(
    ("export_format", "compression"), [("parquet", "snappy"), ("csv", "gzip"), ("jsonl", "none")]
)
def test_an_empty_result_still_writes_one_file(tmp_path, export_format, compression):
    files = write(tmp_path, export_format, compression, [])
    assert len(files) == 1 and files[0].rows == 0
    if export_format == "parquet":
        assert pq.read_table(files[0].path).schema.names == SCHEMA.names
    elif export_format == "csv":
        assert gzip.decompress(Path(files[0].path).read_bytes()).decode() == ",".join(SCHEMA.names) + "\n"
    else:
        assert Path(files[0].path).read_bytes() == b""


@pytest.mark.parametrize("compression", COMPRESSIONS["parquet"])
def test_every_parquet_compression_is_the_files_codec(tmp_path, compression):
    assert compression in get_args(ParquetCompression)  # the type the Parquet writer is given
    files = write(tmp_path, "parquet", compression, [batch(0, 100)])
    codec = pq.ParquetFile(files[0].path).metadata.row_group(0).column(0).compression
    assert codec == ("UNCOMPRESSED" if compression == "none" else compression.upper())


def test_format_and_compression_validation():
    assert check_format("csv", None) == "none"
    assert check_format("parquet", None) == "snappy"
    assert file_extension("csv", "gzip") == "csv.gz"
    assert file_extension("parquet", "zstd") == "parquet"
    with pytest.raises(ValueError, match="does not apply to csv"):
        check_format("csv", "zstd")
    with pytest.raises(ValueError, match="not supported"):
        check_format("avro", None)
    with pytest.raises(ValueError, match="fetch_size must be positive"):
        ExportSettings(fetch_size=0)
