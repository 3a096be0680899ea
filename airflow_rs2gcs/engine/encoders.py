"""Encode Arrow record batches into local files (Parquet, CSV, JSON Lines), rolled at a size bound.

All formats start from the same Arrow schema (:mod:`airflow_rs2gcs.engine.types`). The CSV and JSON
Lines writers are in :mod:`airflow_rs2gcs.engine.textwriters`, imported only for those formats: they
build each type's text form with Arrow's compute kernels, which a Parquet export never loads.

- Parquet: row groups of about 64k rows; compression ``snappy`` (default), ``zstd``, ``gzip`` or
  ``none``; the Arrow schema (with each field's Redshift type as metadata) is stored in the file.
- CSV: a header line, RFC 4180 quoting, LF line ends, UTF-8; optional gzip.
- JSON Lines: one JSON object per row, keys in column order, UTF-8; optional gzip.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, cast

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_rs2gcs.engine.memory import release_free_memory

DEFAULT_ROW_GROUP_ROWS = 65_536
DEFAULT_ROW_GROUP_BYTES = 16 * 1024 * 1024
# A column falls back from dictionary to plain encoding once its dictionary reaches this size: the
# default (1 MiB) makes high-cardinality columns slower, bigger and ~20 MB hungrier (measured).
DICTIONARY_PAGE_BYTES = 128 * 1024
# Data pages of 256 KiB instead of 1 MiB: same file size, ~5 MB less memory while a row group is written.
DATA_PAGE_BYTES = 256 * 1024
ParquetCompression = Literal["snappy", "zstd", "gzip", "none"]  # settings.COMPRESSIONS["parquet"]


class FormatWriter(Protocol):
    """Writes record batches of one schema into an open output stream."""

    def write_batch(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class ParquetRowGroupWriter:
    """Parquet whose row groups gather record batches up to ``row_group_rows`` rows or ``row_group_bytes``.

    pyarrow starts a row group per write call; small decode batches would make small row groups.

    :param sink: the output stream.
    :param schema: the schema of every batch.
    :param compression: ``snappy``, ``zstd``, ``gzip`` or ``none``.
    :param row_group_rows: rows at which a row group is written.
    :param row_group_bytes: Arrow bytes at which a row group is written early (wide rows).
    """

    def __init__(
        self,
        sink: pa.NativeFile,
        schema: pa.Schema,
        compression: str,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    ) -> None:
        self.schema = schema
        self.row_group_rows = row_group_rows
        self.row_group_bytes = row_group_bytes
        self._writer = pq.ParquetWriter(
            sink,
            schema,
            # settings.check_format allows no other value; "none" writes the same file as None (no codec)
            compression=cast(ParquetCompression, compression),
            dictionary_pagesize_limit=DICTIONARY_PAGE_BYTES,
            data_page_size=DATA_PAGE_BYTES,
        )
        self._pending: list[pa.RecordBatch] = []
        self._rows = self._bytes = 0

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Add the batch to the current row group; write the group once it is full."""
        self._pending.append(batch)
        self._rows += batch.num_rows
        self._bytes += batch.nbytes
        if self._rows >= self.row_group_rows or self._bytes >= self.row_group_bytes:
            self.flush()

    def flush(self) -> None:
        """Write the gathered batches as one row group."""
        if self._pending:
            table = pa.Table.from_batches(self._pending, self.schema)
            self._writer.write_table(table, row_group_size=max(self._rows, 1))
            self._pending, self._rows, self._bytes = [], 0, 0

    def close(self) -> None:
        """Write the last row group and the footer."""
        self.flush()
        self._writer.close()

    def abort(self) -> None:
        """Drop the gathered batches and end the file (which the caller discards)."""
        self._pending = []
        with contextlib.suppress(pa.ArrowException, OSError):
            self._writer.close()


def open_format_writer(
    export_format: str,
    compression: str,
    sink: pa.NativeFile,
    schema: pa.Schema,
    max_file_bytes: int = 1 << 62,
) -> FormatWriter:
    """The writer of ``export_format`` on ``sink`` (text formats get gzip from the sink, not here).

    Parquet row groups are also cut at half of ``max_file_bytes`` (in Arrow bytes), so that small
    file bounds still give several files.
    """
    if export_format == "parquet":
        row_group_bytes = min(DEFAULT_ROW_GROUP_BYTES, max(1, max_file_bytes // 2))
        return ParquetRowGroupWriter(sink, schema, compression, row_group_bytes=row_group_bytes)
    # Imported here: the text forms load Arrow's compute kernels (~12 MB of RSS), which Parquet never needs.
    from airflow_rs2gcs.engine.textwriters import CsvWriter, JsonLinesWriter

    if export_format == "csv":
        return CsvWriter(sink, schema)
    return JsonLinesWriter(sink, schema)


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
    :param compression: see :data:`airflow_rs2gcs.engine.settings.COMPRESSIONS`.
    :param schema: the Arrow schema of every batch.
    :param max_file_bytes: size bound of one file (checked after each batch, so a file ends at the
        first batch boundary at or past it).
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
        self._path = ""
        self._raw: pa.NativeFile | None = None
        self._sink: pa.NativeFile | None = None
        self._writer: FormatWriter | None = None
        self._rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Append a batch to the current file, rolling to a new file at the size bound."""
        if self._writer is None:
            self._open()
        assert self._writer is not None and self._raw is not None
        self._writer.write_batch(batch)
        self._rows += batch.num_rows
        release_free_memory()
        if self._raw.tell() >= self.max_file_bytes:
            self._finish()

    def close(self, *, write_empty: bool = False) -> None:
        """Finish the current file; with ``write_empty`` and no file at all, write one with no rows."""
        if self._writer is None and write_empty and self.files_done == 0:
            self._open()
        if self._writer is not None:
            self._finish()

    def abort(self) -> None:
        """Close the current file without handing it on (after a failure)."""
        if self._writer is not None:
            self._writer.abort()
        for stream in (self._sink, self._raw):
            if stream is not None and not stream.closed:
                stream.close()
        self._writer = self._sink = self._raw = None

    def _open(self) -> None:
        self._path = os.path.join(self.directory, f"part-{self.files_done:05d}")
        self._raw = pa.OSFile(self._path, "wb")
        text_gzip = self.export_format != "parquet" and self.compression == "gzip"
        self._sink = pa.CompressedOutputStream(self._raw, "gzip") if text_gzip else self._raw
        self._writer = open_format_writer(
            self.export_format, self.compression, self._sink, self.schema, self.max_file_bytes
        )
        self._rows = 0

    def _finish(self) -> None:
        assert self._writer is not None and self._raw is not None and self._sink is not None
        self._writer.close()
        if self._sink is not self._raw:
            self._sink.close()
        self._raw.close()
        done = LocalFile(self.files_done, self._path, self._rows, os.path.getsize(self._path))
        self._writer = self._sink = self._raw = None
        self.files_done += 1
        self.on_file_done(done)
