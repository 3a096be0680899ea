"""Encode Arrow record batches into local files (Parquet, CSV, JSON Lines), rolled at a size bound.

All formats start from the same Arrow schema (see :mod:`airflow_rs2gcs.engine.types`):
- Parquet: one row group per batch; compression ``snappy`` (default), ``zstd``, ``gzip`` or ``none``.
- CSV: a header line, RFC 4180 quoting (fields with delimiters, quotes or newlines are quoted, quotes
  doubled); NULL is an empty unquoted field and the empty string is ``""``, so the two stay distinct;
  optional gzip.
- JSON Lines: one JSON object per row, UTF-8; NULL is ``null``; decimals are strings (exact), dates,
  times and timestamps ISO 8601 strings (TIMESTAMPTZ in UTC with ``Z``), binary base64; optional gzip.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

FORMATS = ("parquet", "csv", "jsonl")
COMPRESSIONS = {
    "parquet": ("snappy", "zstd", "gzip", "none"),
    "csv": ("none", "gzip"),
    "jsonl": ("none", "gzip"),
}
DEFAULT_COMPRESSION = {"parquet": "snappy", "csv": "none", "jsonl": "none"}
CONTENT_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
}


def file_extension(export_format: str, compression: str) -> str:
    """The object name's extension, e.g. ``parquet``, ``csv.gz``, ``jsonl``."""
    ext = export_format
    if export_format != "parquet" and compression == "gzip":
        ext += ".gz"
    return ext


def check_format(export_format: str, compression: str | None) -> str:
    """Validate a format/compression pair and return the effective compression."""
    if export_format not in FORMATS:
        raise ValueError(f"export format {export_format!r} is not supported; allowed: {', '.join(FORMATS)}")
    compression = compression or DEFAULT_COMPRESSION[export_format]
    if compression not in COMPRESSIONS[export_format]:
        allowed = ", ".join(COMPRESSIONS[export_format])
        raise ValueError(f"compression {compression!r} does not apply to {export_format}; allowed: {allowed}")
    return compression


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


class _JsonLinesWriter:
    def __init__(self, sink: pa.NativeFile) -> None:
        self.sink = sink

    def write_batch(self, batch: pa.RecordBatch) -> None:
        lines = [
            json.dumps(row, ensure_ascii=False, default=_json_default, separators=(",", ":"))
            for row in batch.to_pylist()
        ]
        self.sink.write(("\n".join(lines) + "\n").encode("utf-8"))

    def close(self) -> None:
        pass


def _open_format_writer(export_format: str, compression: str, sink: pa.NativeFile, schema: pa.Schema) -> Any:
    if export_format == "parquet":
        return pq.ParquetWriter(sink, schema, compression=None if compression == "none" else compression)
    if export_format == "csv":
        options = pa_csv.WriteOptions(include_header=True, quoting_style="needed")
        return pa_csv.CSVWriter(sink, schema, write_options=options)
    return _JsonLinesWriter(sink)


@dataclass
class LocalFile:
    """A finished local file: its sequence number in the export, path, row count and size."""

    index: int
    path: str
    rows: int
    size: int


class RollingFileWriter:
    """Writes batches into numbered local files, starting a new file once one reaches ``max_file_bytes``.

    :param directory: where the local files go (the caller owns and removes it).
    :param export_format: ``parquet``, ``csv`` or ``jsonl``.
    :param compression: see :data:`COMPRESSIONS`.
    :param schema: the Arrow schema of every batch.
    :param max_file_bytes: size bound of one file (checked after each batch).
    :param on_file_done: called with each finished :class:`LocalFile` (e.g. to start its upload).
    """

    def __init__(
        self,
        directory: str,
        export_format: str,
        compression: str,
        schema: pa.Schema,
        max_file_bytes: int,
        on_file_done: Callable[[LocalFile], None],
    ) -> None:
        self.directory = directory
        self.export_format = export_format
        self.compression = compression
        self.schema = schema
        self.max_file_bytes = max_file_bytes
        self.on_file_done = on_file_done
        self.files_done = 0
        self._path: str | None = None
        self._raw: pa.NativeFile | None = None
        self._sink: pa.NativeFile | None = None
        self._writer: Any = None
        self._rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Append a batch to the current file, rolling to a new file at the size bound."""
        if self._writer is None:
            self._open()
        self._writer.write_batch(batch)
        self._rows += batch.num_rows
        if self._raw.tell() >= self.max_file_bytes:
            self._finish()

    def close(self, *, write_empty: bool = False) -> None:
        """Finish the current file; with ``write_empty`` and no file at all, write one with no rows."""
        if self._writer is None and write_empty and self.files_done == 0:
            self._open()
        if self._writer is not None:
            self._finish()

    def _open(self) -> None:
        self._path = os.path.join(self.directory, f"part-{self.files_done:05d}")
        self._raw = pa.OSFile(self._path, "wb")
        text_gzip = self.export_format != "parquet" and self.compression == "gzip"
        self._sink = pa.CompressedOutputStream(self._raw, "gzip") if text_gzip else self._raw
        self._writer = _open_format_writer(self.export_format, self.compression, self._sink, self.schema)
        self._rows = 0

    def _finish(self) -> None:
        self._writer.close()
        if self._sink is not self._raw:
            self._sink.close()
        self._raw.close()
        done = LocalFile(self.files_done, self._path, self._rows, os.path.getsize(self._path))
        self._writer = self._sink = self._raw = self._path = None
        self.files_done += 1
        self.on_file_done(done)
